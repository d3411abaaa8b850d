#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian/Ubuntu machine (run as root).
# Idempotent: does nothing for what is already there.
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v iptables >/dev/null 2>&1 || need+=(iptables)   # make bench-dataplane (kernel reference)
command -v curl >/dev/null 2>&1 || need+=(curl)           # make demo: scraping the manager's metrics
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: need root to install: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
