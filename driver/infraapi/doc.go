// Package infraapi holds calico-p4's infrastructure API: the gRPC stream between calico-p4-driver and
// calico-p4-manager (infraapi.proto) and its generated Go code, plus the small helpers both ends share
// (protocol version, message size limits, dial/listen address parsing and mTLS configuration).
//
// The generated files are committed; regenerate with `go generate ./driver/infraapi` (needs protoc,
// protoc-gen-go v1.35.1 and protoc-gen-go-grpc v1.5.1 on PATH). CI does not need protoc.
package infraapi

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative infraapi.proto
