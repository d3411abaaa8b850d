package p4parse

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FormatText renders a message in protobuf text format the way protoc's
// C++ TextFormat (and therefore p4c) prints it: fields in field-number
// order, "name: value" and "name {", two-space indent.  Unlike Go's
// prototext it is stable, so it can be used for golden files and diffs.
func FormatText(m proto.Message) string {
	var b strings.Builder
	formatMessage(&b, m.ProtoReflect(), 0)
	return b.String()
}

func formatMessage(b *strings.Builder, m protoreflect.Message, depth int) {
	var fields []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	sort.Slice(fields, func(i, j int) bool { return fields[i].Number() < fields[j].Number() })
	indent := strings.Repeat("  ", depth)
	for _, fd := range fields {
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				formatValue(b, fd, l.Get(i), indent, depth)
			}
		case fd.IsMap():
			panic("maps are not used in P4Info")
		default:
			formatValue(b, fd, v, indent, depth)
		}
	}
}

func formatValue(b *strings.Builder, fd protoreflect.FieldDescriptor, v protoreflect.Value, indent string, depth int) {
	name := string(fd.Name())
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		fmt.Fprintf(b, "%s%s {\n", indent, name)
		formatMessage(b, v.Message(), depth+1)
		fmt.Fprintf(b, "%s}\n", indent)
	case protoreflect.StringKind:
		fmt.Fprintf(b, "%s%s: %s\n", indent, name, quote(v.String()))
	case protoreflect.BytesKind:
		fmt.Fprintf(b, "%s%s: %s\n", indent, name, quote(string(v.Bytes())))
	case protoreflect.EnumKind:
		ev := fd.Enum().Values().ByNumber(v.Enum())
		if ev == nil {
			fmt.Fprintf(b, "%s%s: %d\n", indent, name, v.Enum())
		} else {
			fmt.Fprintf(b, "%s%s: %s\n", indent, name, ev.Name())
		}
	default:
		fmt.Fprintf(b, "%s%s: %v\n", indent, name, v.Interface())
	}
}

// quote escapes like protobuf's C++ CEscape: printable ASCII as is, quotes
// and backslashes escaped, other bytes as three-digit octal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			b.WriteString("\\" + strconv.FormatInt(int64(c)+01000, 8)[1:])
		}
	}
	b.WriteByte('"')
	return b.String()
}
