package entry

import (
	"fmt"
	"strings"
)

// String renders the entry readably (names and hex values), e.g.
//
//	table ingress.routes[hdr.ipv4.dst=0x0a000000/24] -> set_nexthop(port=0x1)
//	table svc_vip[dst=0x0a600001, port=0x50] -> group "svc/ns/web/tcp/80"
//	group svc_selector["svc/ns/web/tcp/80"] {"svc/ns/web/tcp/80/10.0.0.1"*1}
//	default ingress.routes -> drop()
func (e Entry) String() string {
	var sb strings.Builder
	sb.WriteString(e.Kind.String())
	sb.WriteByte(' ')
	switch e.Kind {
	case KindMember:
		fmt.Fprintf(&sb, "%s[%q] -> ", e.Profile, e.Name)
		writeAction(&sb, e.Action)
	case KindGroup:
		fmt.Fprintf(&sb, "%s[%q] {", e.Profile, e.Name)
		for i, m := range e.Members {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "%q*%d", m.Member, m.Weight)
		}
		sb.WriteByte('}')
	case KindDefault:
		sb.WriteString(e.Table)
		sb.WriteString(" -> ")
		writeAction(&sb, e.Action)
	default:
		sb.WriteString(e.Table)
		sb.WriteByte('[')
		for i, m := range e.Match {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeMatch(&sb, m)
		}
		sb.WriteByte(']')
		if e.Priority != 0 {
			fmt.Fprintf(&sb, " prio %d", e.Priority)
		}
		sb.WriteString(" -> ")
		switch {
		case e.Member != "":
			fmt.Fprintf(&sb, "member %q", e.Member)
		case e.Group != "":
			fmt.Fprintf(&sb, "group %q", e.Group)
		default:
			writeAction(&sb, e.Action)
		}
	}
	return sb.String()
}

func writeAction(sb *strings.Builder, a Action) {
	sb.WriteString(a.Name)
	sb.WriteByte('(')
	for i, p := range a.Params {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(sb, "%s=%s", p.Name, hexBytes(p.Value))
	}
	sb.WriteByte(')')
}

func writeMatch(sb *strings.Builder, m Match) {
	sb.WriteString(m.Field)
	switch m.Kind {
	case MatchExact:
		fmt.Fprintf(sb, "=%s", hexBytes(m.Value))
	case MatchLPM:
		fmt.Fprintf(sb, "=%s/%d", hexBytes(m.Value), m.PrefixLen)
	case MatchTernary:
		fmt.Fprintf(sb, "=%s&&&%s", hexBytes(m.Value), hexBytes(m.Mask))
	case MatchRange:
		fmt.Fprintf(sb, "=%s..%s", hexBytes(m.Value), hexBytes(m.High))
	case MatchOptional:
		fmt.Fprintf(sb, "?=%s", hexBytes(m.Value))
	default:
		fmt.Fprintf(sb, "=<%s %x>", m.Kind, m.Value)
	}
}

func hexBytes(b []byte) string {
	if len(b) == 0 {
		return "<empty>"
	}
	return fmt.Sprintf("0x%x", b)
}
