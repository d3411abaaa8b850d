package embedded

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/p4src"
)

// The ctl API (JSON over HTTP):
//
//	GET    /v1/ports                 list ports (PortJSON)
//	POST   /v1/ports                 attach {"name": "cali123", "netns": "/run/netns/x", "kind": "afpacket"|"tap"}
//	DELETE /v1/ports/{name}          detach
//	POST   /v1/trace                 {"in_port": "cali123" | "0x1234", "packet_hex": "…"} -> TraceJSON
//	GET    /debug                    the P4Runtime server's table dump (?format=json)

// PortJSON is a port in the ctl API.
type PortJSON struct {
	Name      string `json:"name"`
	NetNS     string `json:"netns,omitempty"`
	Kind      string `json:"kind"`
	ID        uint32 `json:"id"`
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxErrors  uint64 `json:"tx_errors"`
	// RxDropped counts frames the kernel dropped because the port's receive ring was full.
	RxDropped uint64 `json:"rx_dropped"`
}

// TraceRequest asks for a dry-run trace.
type TraceRequest struct {
	InPort    string `json:"in_port"`
	PacketHex string `json:"packet_hex"`
}

// TraceJSON is a trace result.
type TraceJSON struct {
	Text       string `json:"text"`
	Fate       string `json:"fate"` // forward (sent: routed, bridged or answered), reject (dropped, an ICMP error sent back), drop
	OutPort    uint32 `json:"out_port,omitempty"`
	DropReason string `json:"drop_reason,omitempty"`
	Passes     int    `json:"passes"`
	OutputHex  string `json:"output_hex,omitempty"`
}

// CtlHandler serves the ctl API.
func (s *Softswitch) CtlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ports", func(w http.ResponseWriter, r *http.Request) {
		var out []PortJSON
		for _, p := range s.Dataplane.Ports() {
			out = append(out, PortJSON{Name: p.Spec.Name, NetNS: p.Spec.NetNS, Kind: string(p.Spec.Kind), ID: p.ID, State: string(p.State),
				LastError: p.LastError, RxPackets: p.RxPackets, RxBytes: p.RxBytes, TxPackets: p.TxPackets, TxBytes: p.TxBytes, TxErrors: p.TxErrors, RxDropped: p.RxDropped})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /v1/ports", func(w http.ResponseWriter, r *http.Request) {
		var req PortJSON
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
			return
		}
		id, err := s.Attach(r.Context(), ports.Spec{Name: req.Name, NetNS: req.NetNS, Kind: ports.Kind(req.Kind)})
		if err != nil {
			httpError(w, http.StatusConflict, err)
			return
		}
		writeJSON(w, http.StatusOK, PortJSON{Name: req.Name, NetNS: req.NetNS, Kind: req.Kind, ID: id})
	})
	mux.HandleFunc("DELETE /v1/ports/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Detach(r.PathValue("name")); err != nil {
			httpError(w, http.StatusNotFound, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/trace", func(w http.ResponseWriter, r *http.Request) {
		var req TraceRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
			return
		}
		port, err := ParsePort(req.InPort)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		pkt, err := hex.DecodeString(strings.Join(strings.Fields(req.PacketHex), ""))
		if err != nil || len(pkt) == 0 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("packet_hex: not hex bytes"))
			return
		}
		tr, err := s.Pipeline.Trace(pkt, port)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err)
			return
		}
		writeJSON(w, http.StatusOK, TraceToJSON(tr))
	})
	mux.Handle("GET /debug", s.Server.DebugHandler())
	return mux
}

// TraceToJSON renders a trace for the ctl API.
func TraceToJSON(tr *pipeline.Trace) TraceJSON {
	out := TraceJSON{Text: tr.String(), Passes: tr.Result.Passes}
	if tr.Result.Forwarded() {
		out.Fate = "forward"
		if tr.Result.Fate == p4src.FateReply && tr.Result.DropReason != p4src.DropNone {
			// Rejected: dropped, and an ICMP error sent back in its place.
			out.Fate = "reject"
			out.DropReason = pipeline.DropReasonName(tr.Result.DropReason)
		}
		out.OutPort = tr.Result.Port
		out.OutputHex = hex.EncodeToString(tr.Result.Data)
	} else {
		out.Fate = "drop"
		out.DropReason = pipeline.DropReasonName(tr.Result.DropReason)
	}
	return out
}

// ParsePort reads a port as a number (decimal or 0x…) or an interface name (IDForName).
func ParsePort(s string) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("no input port")
	}
	if v, err := strconv.ParseUint(s, 0, 32); err == nil {
		return uint32(v), nil
	}
	return ports.IDForName(s), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
