package embedded

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded/podnet"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/vectors"
)

func TestCtlTraceShowsTablesAndVerdictWithoutSideEffects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sw, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sw.Serve(lis) }()
	c, err := p4rt.Dial(ctx, p4rt.Config{Address: "unix://" + sock, DeviceID: 1, ElectionID: p4rt.Uint128{Low: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	pods := []podnet.Pod{
		{HostIface: "cali-a", MAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x41, 0, 2}, IPv4: netip.MustParseAddr("10.65.0.2"), Endpoint: 101},
		{HostIface: "cali-b", MAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x41, 0, 3}, IPv4: netip.MustParseAddr("10.65.0.3"), Endpoint: 102},
	}
	if err := podnet.Install(ctx, c, podnet.Entries(pods)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sw.CtlHandler())
	defer srv.Close()

	pkt, err := vectors.ParsePacket("eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.3) / tcp(sport=40000, dport=80, flags=S)")
	if err != nil {
		t.Fatal(err)
	}
	trace := func(inPort string) TraceJSON {
		body, _ := json.Marshal(TraceRequest{InPort: inPort, PacketHex: hex.EncodeToString(pkt)})
		resp, err := http.Post(srv.URL+"/v1/trace", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("trace: %s", resp.Status)
		}
		var out TraceJSON
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for i := 0; i < 2; i++ { // the same answer twice: the first trace learned nothing
		out := trace("cali-a")
		if out.Fate != "forward" || out.OutPort != ports.IDForName("cali-b") {
			t.Fatalf("trace %d: %+v", i, out)
		}
		for _, want := range []string{"port_endpoint", "ct_reply_v4", "route_v4 {dst_addr=10.65.0.3}: hit", "rule_allow", "learn ct_orig_v4", "dry run: not added", "verdict: forward"} {
			if !strings.Contains(out.Text, want) {
				t.Errorf("trace lacks %q:\n%s", want, out.Text)
			}
		}
	}
	if out := trace("cali-unknown"); out.Fate != "drop" || out.DropReason != "DROP_UNKNOWN_PORT" {
		t.Errorf("unknown port: %+v", out)
	}
	if n := sw.Server.Store().Load().TableByName(string(p4src.TableCTOrigV4)).Len(); n != 0 {
		t.Errorf("traces learned %d ct_orig_v4 entries", n)
	}
}
