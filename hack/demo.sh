#!/usr/bin/env bash
# make demo: calico-p4 end to end on this machine — network-namespace pods in two namespaces, the real
# calico-p4-manager with the embedded softswitch, the Felix emulator exec'ing the real calico-p4-driver,
# reachability matrices before and after a default-deny and an allow policy, table occupancy, metrics.
# Run as root on a Debian/Ubuntu machine with Go. DEMO_HOLD=1 keeps it running until Ctrl-C.
# Everything it creates is removed on exit (Ctrl-C and failures included).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "make demo: run as root (it creates network namespaces and veth pairs)" >&2
  exit 1
fi
./hack/install-deps.sh
export PATH=/usr/local/go/bin:$PATH
if ! command -v go >/dev/null 2>&1; then
  echo "make demo: needs Go >= 1.26 (https://go.dev/dl/) on PATH" >&2
  exit 1
fi
for b in calico-p4-manager calico-p4-driver calico-p4ctl calico-p4-probe; do
  [ -x "bin/$b" ] || { make build; break; }
done
go build -o bin/calico-p4-demo ./hack/demo
# Backstop: if the demo itself is killed, remove whatever namespaces it left (only those of dead runs;
# its child processes die with it).
trap 'bin/calico-p4-probe sweep >/dev/null 2>&1 || true' EXIT
bin/calico-p4-demo --bin bin --scenario hack/demo/demo.yaml ${DEMO_HOLD:+--hold}
