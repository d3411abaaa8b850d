package p4src

import (
	_ "embed"
	"fmt"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/encoding/prototext"
)

//go:generate go run ./internal/gen

//go:embed k8s.p4
var program []byte

//go:embed k8s.p4info.txtpb
var p4infoText []byte

// ProgramName is the name of the P4 program.
const ProgramName = "k8s.p4"

// Program returns the source of k8s.p4.
func Program() []byte { return append([]byte(nil), program...) }

// P4InfoText returns the committed P4Info in protobuf text format.
func P4InfoText() []byte { return append([]byte(nil), p4infoText...) }

// P4Info parses the committed P4Info.  Each call returns a new message that
// the caller may modify.
func P4Info() (*p4configv1.P4Info, error) {
	info := &p4configv1.P4Info{}
	if err := prototext.Unmarshal(p4infoText, info); err != nil {
		return nil, fmt.Errorf("parse embedded %s P4Info: %w", ProgramName, err)
	}
	return info, nil
}

// MustP4Info is P4Info for callers that cannot proceed without it (the
// embedded file is checked by this package's tests, so it cannot fail in a
// released binary).
func MustP4Info() *p4configv1.P4Info {
	info, err := P4Info()
	if err != nil {
		panic(err)
	}
	return info
}
