package tables

import (
	p4cfg "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// registerData is a structured register value (non-bitstring type spec).
type registerData struct{ d *p4.P4Data }

type regVal struct {
	u uint64
	b []byte
	d *p4.P4Data
}

func (a *registerArray) load(i int) regVal {
	switch {
	case a.u64 != nil:
		return regVal{u: a.u64[i].Load()}
	case a.wide != nil:
		if p := a.wide[i].Load(); p != nil {
			return regVal{b: *p}
		}
		return regVal{b: make([]byte, (a.info.Bitwidth+7)/8)}
	default:
		if p := a.data[i].Load(); p != nil {
			return regVal{d: p.d}
		}
		return regVal{}
	}
}

func (a *registerArray) store(i int, v regVal) {
	switch {
	case a.u64 != nil:
		a.u64[i].Store(v.u)
	case a.wide != nil:
		b := v.b
		a.wide[i].Store(&b)
	default:
		a.data[i].Store(&registerData{d: v.d})
	}
}

// decode validates a P4Data value against the register type.
func (a *registerArray) decode(d *p4.P4Data, strict bool) (regVal, *Error) {
	ri := a.info
	if a.u64 != nil || a.wide != nil {
		bs, ok := d.Data.(*p4.P4Data_Bitstring)
		if !ok {
			return regVal{}, errf(codes.InvalidArgument, "register %q holds bit<%d>: data must be a bitstring", ri.Name, ri.Bitwidth)
		}
		b := bs.Bitstring
		if ri.Signed && ri.Bitwidth <= 64 {
			v, err := decodeSigned(b, ri.Bitwidth, "register "+ri.Name)
			if err != nil {
				return regVal{}, err
			}
			return regVal{u: v}, nil
		}
		buf := make([]byte, (ri.Bitwidth+7)/8)
		if err := putBits(buf, b, ri.Bitwidth, strict, desc{a: "register", b: ri.Name}); err != nil {
			return regVal{}, err
		}
		if a.u64 != nil {
			return regVal{u: U64(buf)}, nil
		}
		return regVal{b: buf}, nil
	}
	if !sameDataKind(ri.TypeSpec, d) {
		return regVal{}, errf(codes.InvalidArgument, "register %q: data does not match its type", ri.Name)
	}
	return regVal{d: proto.Clone(d).(*p4.P4Data)}, nil
}

func (a *registerArray) encode(v regVal) *p4.P4Data {
	ri := a.info
	switch {
	case a.u64 != nil:
		if ri.Signed {
			return &p4.P4Data{Data: &p4.P4Data_Bitstring{Bitstring: encodeSigned(v.u, ri.Bitwidth)}}
		}
		var b [8]byte
		PutU64(b[:], v.u)
		return &p4.P4Data{Data: &p4.P4Data_Bitstring{Bitstring: canonicalCopy(b[:])}}
	case a.wide != nil:
		return &p4.P4Data{Data: &p4.P4Data_Bitstring{Bitstring: canonicalCopy(v.b)}}
	default:
		if v.d == nil {
			return zeroData(ri.TypeSpec)
		}
		return proto.Clone(v.d).(*p4.P4Data)
	}
}

// decodeSigned decodes a sign-extended two's complement bytestring for int<W> (W <= 64) into the W-bit
// pattern.
func decodeSigned(b []byte, w int, what string) (uint64, *Error) {
	if len(b) == 0 {
		return 0, errf(codes.OutOfRange, "%s: empty bytestring", what)
	}
	neg := b[0]&0x80 != 0
	// Undo sign extension: drop leading bytes equal to the sign fill while the next byte keeps the sign.
	fill := byte(0)
	if neg {
		fill = 0xff
	}
	i := 0
	for i < len(b)-1 && b[i] == fill && (b[i+1]&0x80 != 0) == neg {
		i++
	}
	v := b[i:]
	if len(v) > 8 {
		return 0, errf(codes.OutOfRange, "%s: value %x does not fit in int<%d>", what, b, w)
	}
	var x int64
	if neg {
		x = -1
	}
	for _, c := range v {
		x = x<<8 | int64(c)
	}
	if w < 64 {
		lim := int64(1) << uint(w-1)
		if x < -lim || x >= lim {
			return 0, errf(codes.OutOfRange, "%s: value %x does not fit in int<%d>", what, b, w)
		}
		return uint64(x) & (1<<uint(w) - 1), nil
	}
	return uint64(x), nil
}

// encodeSigned renders a W-bit two's complement pattern as the shortest sign-extended bytestring.
func encodeSigned(u uint64, w int) []byte {
	x := int64(u)
	if w < 64 {
		shift := uint(64 - w)
		x = int64(u<<shift) >> shift
	}
	var b [8]byte
	PutU64(b[:], uint64(x))
	i := 0
	for i < 7 {
		if (b[i] == 0 && b[i+1]&0x80 == 0) || (b[i] == 0xff && b[i+1]&0x80 != 0) {
			i++
			continue
		}
		break
	}
	return append([]byte(nil), b[i:]...)
}

func sameDataKind(ts *p4cfg.P4DataTypeSpec, d *p4.P4Data) bool {
	switch ts.TypeSpec.(type) {
	case *p4cfg.P4DataTypeSpec_Bitstring:
		_, ok := d.Data.(*p4.P4Data_Bitstring)
		return ok
	case *p4cfg.P4DataTypeSpec_Bool:
		_, ok := d.Data.(*p4.P4Data_Bool)
		return ok
	case *p4cfg.P4DataTypeSpec_Tuple:
		_, ok := d.Data.(*p4.P4Data_Tuple)
		return ok
	case *p4cfg.P4DataTypeSpec_Struct:
		_, ok := d.Data.(*p4.P4Data_Struct)
		return ok
	case *p4cfg.P4DataTypeSpec_Header:
		_, ok := d.Data.(*p4.P4Data_Header)
		return ok
	case *p4cfg.P4DataTypeSpec_HeaderUnion:
		_, ok := d.Data.(*p4.P4Data_HeaderUnion)
		return ok
	case *p4cfg.P4DataTypeSpec_HeaderStack:
		_, ok := d.Data.(*p4.P4Data_HeaderStack)
		return ok
	case *p4cfg.P4DataTypeSpec_HeaderUnionStack:
		_, ok := d.Data.(*p4.P4Data_HeaderUnionStack)
		return ok
	case *p4cfg.P4DataTypeSpec_Enum:
		_, ok := d.Data.(*p4.P4Data_Enum)
		return ok
	case *p4cfg.P4DataTypeSpec_Error:
		_, ok := d.Data.(*p4.P4Data_Error)
		return ok
	case *p4cfg.P4DataTypeSpec_SerializableEnum:
		_, ok := d.Data.(*p4.P4Data_EnumValue)
		return ok
	}
	return false
}

// zeroData is the read value of a never-written structured register cell.
func zeroData(ts *p4cfg.P4DataTypeSpec) *p4.P4Data {
	switch ts.TypeSpec.(type) {
	case *p4cfg.P4DataTypeSpec_Bool:
		return &p4.P4Data{Data: &p4.P4Data_Bool{Bool: false}}
	case *p4cfg.P4DataTypeSpec_Struct:
		return &p4.P4Data{Data: &p4.P4Data_Struct{Struct: &p4.P4StructLike{}}}
	case *p4cfg.P4DataTypeSpec_Tuple:
		return &p4.P4Data{Data: &p4.P4Data_Tuple{Tuple: &p4.P4StructLike{}}}
	case *p4cfg.P4DataTypeSpec_Header:
		return &p4.P4Data{Data: &p4.P4Data_Header{Header: &p4.P4Header{}}}
	}
	return &p4.P4Data{}
}
