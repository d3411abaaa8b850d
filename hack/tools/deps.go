//go:build tools

package tools

import (
	_ "github.com/gogo/protobuf/jsonpb"
	_ "github.com/p4lang/p4runtime/go/p4/config/v1"
	_ "github.com/p4lang/p4runtime/go/p4/v1"
	_ "github.com/projectcalico/calico/cni-plugin/pkg/dataplane/grpc/proto"
	_ "github.com/projectcalico/calico/felix/deltatracker"
	_ "github.com/projectcalico/calico/felix/proto"
	_ "github.com/projectcalico/calico/libcalico-go/lib/selector"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/vishvananda/netlink"
	_ "go.uber.org/zap"
	_ "google.golang.org/grpc"
	_ "k8s.io/client-go/kubernetes"
)
