// Command gen writes p4src/names_gen.go from k8s.p4info.txtpb and k8s.p4.
// Run it with `go generate ./p4src` (it works in the p4src directory).
package main

import (
	"fmt"
	"os"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/calico-p4/calico-p4/p4src/internal/names"
	"github.com/calico-p4/calico-p4/p4src/internal/p4parse"
)

func main() {
	if err := run("k8s.p4info.txtpb", "k8s.p4", "names_gen.go"); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(infoPath, progPath, outPath string) error {
	text, err := os.ReadFile(infoPath)
	if err != nil {
		return err
	}
	info := &p4configv1.P4Info{}
	if err := prototext.Unmarshal(text, info); err != nil {
		return fmt.Errorf("parse %s: %w", infoPath, err)
	}
	src, err := os.ReadFile(progPath)
	if err != nil {
		return err
	}
	prog, err := p4parse.Parse(src)
	if err != nil {
		return fmt.Errorf("parse %s: %w", progPath, err)
	}
	out, err := names.Generate(info, prog)
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, out, 0o644)
}
