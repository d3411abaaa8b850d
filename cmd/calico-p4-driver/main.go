// Command calico-p4-driver is the Felix external dataplane driver: Felix execs it with no arguments
// (FELIX_USEINTERNALDATAPLANEDRIVER=false, FELIX_DATAPLANEDRIVER=<path>), fd 3 carries Felix's
// ToDataplane frames and fd 4 takes FromDataplane frames. It relays both to calico-p4-manager.
//
// Environment:
//
//	CALICO_P4_MANAGER    manager address, default unix:///var/run/calico-p4/felix.sock; host:port needs mTLS
//	CALICO_P4_TLS_CERT   client certificate (PEM) for a TCP manager
//	CALICO_P4_TLS_KEY    its key
//	CALICO_P4_TLS_CA     CA bundle that signed the manager's certificate
//	CALICO_P4_LOG_LEVEL  debug, info (default), warn, error; logs go to stderr (Felix copies them)
//	CALICO_P4_CONNECT_TIMEOUT  how long to keep retrying the manager (Go duration, default 30s)
//
// Exit status: 0 when Felix closed the pipe or after SIGTERM; 1 with a one-line reason on stderr when the
// manager cannot be reached within 30 s, the session is lost, or the stream from Felix is corrupt.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/calico-p4/calico-p4/driver/infraapi"
	"github.com/calico-p4/calico-p4/driver/relay"
)

var version = "dev"

func main() {
	os.Exit(run())
}

func run() int {
	// First: Felix may SIGTERM us at any time; what is in the pipe is relayed before exiting.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "calico-p4-driver: takes no arguments (Felix execs it; configure with CALICO_P4_* environment variables)")
		return 2
	}
	level := zapcore.InfoLevel
	if v := os.Getenv("CALICO_P4_LOG_LEVEL"); v != "" {
		if err := level.Set(v); err != nil {
			fmt.Fprintf(os.Stderr, "calico-p4-driver: CALICO_P4_LOG_LEVEL: %v\n", err)
			return 2
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(encCfg), zapcore.Lock(os.Stderr), level)).
		Named("calico-p4-driver")
	defer log.Sync() //nolint:errcheck

	in := os.NewFile(3, "felix-to-driver")
	out := os.NewFile(4, "driver-to-felix")
	if in == nil || out == nil {
		fmt.Fprintln(os.Stderr, "calico-p4-driver: fd 3 and fd 4 must be Felix's pipes")
		return 2
	}
	manager := os.Getenv("CALICO_P4_MANAGER")
	if manager == "" {
		manager = infraapi.DefaultAddress
	}
	connectTimeout := 30 * time.Second
	if v := os.Getenv("CALICO_P4_CONNECT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "calico-p4-driver: CALICO_P4_CONNECT_TIMEOUT %q: want a positive duration such as 30s\n", v)
			return 2
		}
		connectTimeout = d
	}
	res, err := relay.Run(context.Background(), relay.Config{
		Manager: manager,
		TLS: infraapi.TLSFiles{Cert: os.Getenv("CALICO_P4_TLS_CERT"), Key: os.Getenv("CALICO_P4_TLS_KEY"),
			CA: os.Getenv("CALICO_P4_TLS_CA")},
		ConnectTimeout: connectTimeout,
		Version:        version,
		Log:            log,
	}, in, out, term)
	if err != nil {
		log.Sync() //nolint:errcheck
		fmt.Fprintf(os.Stderr, "calico-p4-driver: %v\n", err)
		return 1
	}
	log.Info("Exiting", zap.String("reason", res.Reason))
	return 0
}
