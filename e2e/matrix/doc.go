// Package matrix probes every ordered pair of pods for a set of protocol/port/family cases, compares the
// observations with an expected truth table and prints Kubernetes-netpol-e2e-style tables (expected,
// observed, comparison with X marking a mismatch).
//
// It owns the truth tables and their formatting. It must not create namespaces (package topology) or decide
// what a scenario expects (package scenario hands it tables).
package matrix
