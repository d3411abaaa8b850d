package infraapi_test

import (
	"testing"

	"github.com/calico-p4/calico-p4/driver/infraapi"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		network string
		addr    string
		target  string
		wantErr bool
	}{
		{in: "unix:///var/run/calico-p4/felix.sock", network: "unix", addr: "/var/run/calico-p4/felix.sock", target: "unix:///var/run/calico-p4/felix.sock"},
		{in: "unix:rel/felix.sock", network: "unix", addr: "rel/felix.sock", target: "unix:rel/felix.sock"},
		{in: "10.0.0.1:7443", network: "tcp", addr: "10.0.0.1:7443", target: "10.0.0.1:7443"},
		{in: "[fd00::1]:7443", network: "tcp", addr: "[fd00::1]:7443", target: "[fd00::1]:7443"},
		{in: "unix://relative", wantErr: true},
		{in: "unix:", wantErr: true},
		{in: "no-port", wantErr: true},
		{in: "host:", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			a, err := infraapi.ParseAddress(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if a.Network != tc.network || a.Addr != tc.addr || a.String() != tc.target {
				t.Errorf("got %+v (%s)", a, a)
			}
		})
	}
}

func TestTLSNeedsAllThreeFiles(t *testing.T) {
	if _, err := infraapi.ServerTLS(infraapi.TLSFiles{Cert: "c"}); err == nil {
		t.Error("server TLS accepted a partial configuration")
	}
	if _, err := infraapi.ClientTLS(infraapi.TLSFiles{}, "x"); err == nil {
		t.Error("client TLS accepted an empty configuration")
	}
}
