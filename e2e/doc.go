// Package e2e holds the end-to-end tests of calico-p4 (build tag "e2e", run as root by `make e2e-test`):
// network-namespace pods built by e2e/topology, probed by e2e/probe, checked with e2e/matrix against what
// e2e/scenario expects. The building blocks live in the sub-packages; this package holds only tests.
package e2e
