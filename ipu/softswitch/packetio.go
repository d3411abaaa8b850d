package softswitch

import (
	"bytes"
	"fmt"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

// SendPacketIn delivers a packet from the CPU port to the primary controller(s) as a PacketIn. The
// metadata must give one value per field of the P4Info packet_in header, in P4Info order. It never
// blocks: if a controller's queue is full the packet is dropped for it (counted). It returns
// ErrNoPrimary when no primary is connected.
func (s *Server) SendPacketIn(pkt Packet) error {
	st := s.store.Load()
	if st.Schema == nil {
		return fmt.Errorf("softswitch: packet-in without a pipeline config")
	}
	hdr := st.Schema.PacketIn
	n := 0
	if hdr != nil {
		n = len(hdr.Metadata)
	}
	if len(pkt.Metadata) != n {
		return fmt.Errorf("softswitch: packet-in has %d metadata values, the packet_in header has %d fields", len(pkt.Metadata), n)
	}
	pi := &p4.PacketIn{Payload: bytes.Clone(pkt.Payload)}
	for i, v := range pkt.Metadata {
		f := hdr.Metadata[i]
		c := tables.Canonical(v)
		if len(c) > (f.Bitwidth+7)/8 || (len(c) == (f.Bitwidth+7)/8 && f.Bitwidth%8 != 0 && c[0]>>(f.Bitwidth%8) != 0) {
			return fmt.Errorf("softswitch: packet-in metadata %q value %x does not fit in %d bits", f.Name, v, f.Bitwidth)
		}
		pi.Metadata = append(pi.Metadata, &p4.PacketMetadata{MetadataId: f.ID, Value: bytes.Clone(c)})
	}
	prims := s.primaries()
	if len(prims) == 0 {
		s.metrics.packetIn.WithLabelValues("dropped_no_primary").Inc()
		return ErrNoPrimary
	}
	msg := &p4.StreamMessageResponse{Update: &p4.StreamMessageResponse_Packet{Packet: pi}}
	for _, p := range prims {
		if p.trySend(msg) {
			s.metrics.packetIn.WithLabelValues("sent").Inc()
		} else {
			s.metrics.packetIn.WithLabelValues("dropped_queue_full").Inc()
		}
	}
	return nil
}

func (s *Server) handlePacketOut(st *stream, po *p4.PacketOut) {
	fail := func(c codes.Code, result, format string, args ...any) {
		s.metrics.packetOut.WithLabelValues(result).Inc()
		s.streamError(st, c, fmt.Sprintf(format, args...), &p4.StreamError_PacketOut{PacketOut: &p4.PacketOutError{PacketOut: po}})
	}
	if !s.isPrimary(st) {
		fail(codes.PermissionDenied, "rejected", "packet-out from a controller that is not primary")
		return
	}
	state := s.store.Load()
	if state.Schema == nil {
		fail(codes.FailedPrecondition, "rejected", "packet-out without a pipeline config")
		return
	}
	hdr := state.Schema.PacketOut
	var vals [][]byte
	if hdr == nil {
		if len(po.Metadata) > 0 {
			fail(codes.InvalidArgument, "rejected", "packet-out metadata given but the P4Info has no packet_out header")
			return
		}
	} else {
		vals = make([][]byte, len(hdr.Metadata))
		for _, m := range po.Metadata {
			idx := -1
			for i := range hdr.Metadata {
				if hdr.Metadata[i].ID == m.MetadataId {
					idx = i
				}
			}
			if idx < 0 {
				fail(codes.InvalidArgument, "rejected", "unknown packet_out metadata id %d", m.MetadataId)
				return
			}
			if vals[idx] != nil {
				fail(codes.InvalidArgument, "rejected", "packet_out metadata id %d given twice", m.MetadataId)
				return
			}
			f := hdr.Metadata[idx]
			v := make([]byte, (f.Bitwidth+7)/8)
			c := tables.Canonical(m.Value)
			if len(m.Value) == 0 || len(c) > len(v) || (len(c) == len(v) && f.Bitwidth%8 != 0 && c[0]>>(f.Bitwidth%8) != 0) {
				fail(codes.InvalidArgument, "rejected", "packet_out metadata %q value %x does not fit in %d bits", f.Name, m.Value, f.Bitwidth)
				return
			}
			copy(v[len(v)-len(c):], c)
			vals[idx] = v
		}
		for i, v := range vals {
			if v == nil {
				fail(codes.InvalidArgument, "rejected", "packet_out metadata %q is missing", hdr.Metadata[i].Name)
				return
			}
		}
	}
	h := s.packetOut.Load()
	if h == nil {
		fail(codes.FailedPrecondition, "no_handler", "no CPU port is attached to take packet-outs")
		return
	}
	if err := (*h)(Packet{Payload: po.Payload, Metadata: vals}); err != nil {
		fail(codes.Unavailable, "handler_error", "packet-out not sent: %v", err)
		return
	}
	s.metrics.packetOut.WithLabelValues("ok").Inc()
}
