// Command benchdataplane (make bench-dataplane) measures pod-to-pod TCP between two network-namespace
// pods on this machine, in one run, over (a) the embedded softswitch (calico-p4-softswitch attached to
// the pods' veth host ends, configured through P4Runtime with an allow policy and conntrack) and (b) plain
// kernel veth routing as Calico's Linux dataplane sets it up, with equivalent iptables filter rules
// (conntrack ESTABLISHED,RELATED accept, pod-to-pod accept, default drop). It reports TCP_RR transactions
// per second (one connection, 1-byte request and response) and bulk TCP throughput (one connection),
// and the softswitch/kernel ratios. Needs root.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
	"github.com/calico-p4/calico-p4/e2e/topology"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded/podnet"
)

var (
	podA = topology.PodSpec{Name: "bench/client", IPv4: netip.MustParseAddr("10.65.0.2"), IPv6: netip.MustParseAddr("fd00:65::2")}
	podB = topology.PodSpec{Name: "bench/server", IPv4: netip.MustParseAddr("10.65.0.3"), IPv6: netip.MustParseAddr("fd00:65::3")}
)

var (
	extraArgs string
	only      string
	rrOnly    bool
)

type result struct {
	rr   float64 // transactions/s
	bulk float64 // bits/s
}

func main() {
	bin := flag.String("softswitch", "bin/calico-p4-softswitch", "calico-p4-softswitch binary")
	dur := flag.Duration("duration", 5*time.Second, "length of each measurement")
	flag.StringVar(&extraArgs, "softswitch-args", "", "extra calico-p4-softswitch flags (space-separated)")
	flag.StringVar(&only, "only", "", "measure only this side (kernel or softswitch; profiling)")
	flag.BoolVar(&rrOnly, "rr-only", false, "measure TCP_RR only (profiling)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-dataplane: needs root (network namespaces)")
		os.Exit(1)
	}
	log, _ := zap.NewDevelopment()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var kernel, soft result
	var err error
	if only != "softswitch" {
		if kernel, err = runKernel(ctx, log, *dur); err != nil {
			fmt.Fprintln(os.Stderr, "kernel:", err)
			os.Exit(1)
		}
	}
	if only != "kernel" {
		if soft, err = runSoftswitch(ctx, log, *bin, *dur); err != nil {
			fmt.Fprintln(os.Stderr, "softswitch:", err)
			os.Exit(1)
		}
	}
	if only != "" {
		return
	}
	fmt.Printf("\n%-28s %16s %16s %8s\n", "pod-to-pod TCP (one flow)", "softswitch", "kernel+iptables", "ratio")
	fmt.Printf("%-28s %16.0f %16.0f %8.2f\n", "TCP_RR transactions/s", soft.rr, kernel.rr, soft.rr/kernel.rr)
	fmt.Printf("%-28s %16.2f %16.2f %8.2f\n", "bulk TCP Gbit/s", soft.bulk/1e9, kernel.bulk/1e9, soft.bulk/kernel.bulk)
}

func runKernel(ctx context.Context, log *zap.Logger, dur time.Duration) (result, error) {
	topo, err := topology.Create(ctx, topology.Config{Mode: topology.ModeKernel, Log: log, Pods: []topology.PodSpec{podA, podB}})
	if topo != nil {
		defer topo.Close()
	}
	if err != nil {
		return result{}, err
	}
	node := topo.Nodes[0].NetNS
	for _, ipt := range []string{"iptables", "ip6tables"} {
		for _, rule := range [][]string{
			{"-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "cali+", "-o", "cali+", "-j", "ACCEPT"},
			{"-P", "FORWARD", "DROP"},
		} {
			args := append([]string{"netns", "exec", node, ipt}, rule...)
			if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
				return result{}, fmt.Errorf("%s %s: %v: %s", ipt, strings.Join(rule, " "), err, out)
			}
		}
	}
	return measure(ctx, topo, dur)
}

func runSoftswitch(ctx context.Context, log *zap.Logger, bin string, dur time.Duration) (result, error) {
	topo, err := topology.Create(ctx, topology.Config{Mode: topology.ModeAttach, Log: log, Pods: []topology.PodSpec{podA, podB}})
	if topo != nil {
		defer topo.Close()
	}
	if err != nil {
		return result{}, err
	}
	dir, err := os.MkdirTemp("", "bench-dataplane")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "p4rt.sock")
	args := []string{"--p4rt-listen", "unix://" + sock, "--ctl-listen", "unix://" + filepath.Join(dir, "ctl.sock"), "--log-level", "warn"}
	var pods []podnet.Pod
	for i, p := range topo.Pods {
		args = append(args, "--port", p.HostIface+"@"+p.Node.Path())
		pods = append(pods, podnet.Pod{HostIface: p.HostIface, MAC: p.MAC, IPv4: p.Spec.IPv4, IPv6: p.Spec.IPv6, Endpoint: uint32(101 + i)})
	}
	args = append(args, strings.Fields(extraArgs)...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 100 {
			return result{}, errors.New("softswitch did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c, err := p4rt.Dial(ctx, p4rt.Config{Address: "unix://" + sock, DeviceID: 1, ElectionID: p4rt.Uint128{Low: 1}})
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	if _, err := c.WaitPrimary(ctx); err != nil {
		return result{}, err
	}
	if err := podnet.Install(ctx, c, podnet.Entries(pods)); err != nil {
		return result{}, err
	}
	r, err := measure(ctx, topo, dur)
	if err == nil {
		reportPorts(filepath.Join(dir, "ctl.sock"))
	}
	return r, err
}

// reportPorts prints the softswitch's frame counts, so that a run shows whether receive rings
// overflowed (frames dropped before the pipeline).
func reportPorts(sock string) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://softswitch/v1/ports")
	if err != nil {
		fmt.Fprintln(os.Stderr, "softswitch ports:", err)
		return
	}
	defer resp.Body.Close()
	var ps []embedded.PortJSON
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
		fmt.Fprintln(os.Stderr, "softswitch ports:", err)
		return
	}
	var rx, drops, txErrs uint64
	for _, p := range ps {
		rx, drops, txErrs = rx+p.RxPackets, drops+p.RxDropped, txErrs+p.TxErrors
	}
	fmt.Printf("softswitch: %d frames received, %d dropped by full receive rings, %d send errors\n", rx, drops, txErrs)
}

func measure(ctx context.Context, topo *topology.Topology, dur time.Duration) (result, error) {
	a, b := topo.Pods[0], topo.Pods[1]
	var r result
	var err error
	if r.rr, err = tcpRR(ctx, a.Path(), b.Path(), b.Spec.IPv4, dur); err != nil {
		return r, fmt.Errorf("TCP_RR: %w", err)
	}
	if !rrOnly {
		if r.bulk, err = bulk(ctx, a.Path(), b.Path(), b.Spec.IPv4, dur); err != nil {
			return r, fmt.Errorf("bulk: %w", err)
		}
	}
	fmt.Printf("%s: TCP_RR %.0f/s, bulk %.2f Gbit/s\n", topo.Mode, r.rr, r.bulk/1e9)
	return r, nil
}

// pair opens a listener in the server namespace and a connection to it from the client namespace.
func pair(ctx context.Context, from, to string, dst netip.Addr) (client, server net.Conn, err error) {
	var ln net.Listener
	if err := netnsutil.DoPath(to, func() error {
		ln, err = net.Listen("tcp", net.JoinHostPort(dst.String(), "0"))
		return err
	}); err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	if err := netnsutil.DoPath(from, func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		client, err = d.DialContext(ctx, "tcp", ln.Addr().String())
		return err
	}); err != nil {
		return nil, nil, err
	}
	select {
	case server = <-acc:
		if server == nil {
			client.Close()
			return nil, nil, errors.New("accept failed")
		}
	case <-time.After(10 * time.Second):
		client.Close()
		return nil, nil, errors.New("accept timed out")
	}
	return client, server, nil
}

func tcpRR(ctx context.Context, from, to string, dst netip.Addr, dur time.Duration) (float64, error) {
	c, s, err := pair(ctx, from, to, dst)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer s.Close()
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(s, b); err != nil {
				return
			}
			if _, err := s.Write(b); err != nil {
				return
			}
		}
	}()
	b := make([]byte, 1)
	_ = c.SetDeadline(time.Now().Add(dur + 10*time.Second))
	start := time.Now()
	n := 0
	for time.Since(start) < dur {
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func bulk(ctx context.Context, from, to string, dst netip.Addr, dur time.Duration) (float64, error) {
	c, s, err := pair(ctx, from, to, dst)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for {
			n, err := s.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 128<<10)
	_ = c.SetDeadline(time.Now().Add(dur + 10*time.Second))
	// Warm up, then measure what the receiver counts.
	warm := time.Now()
	for time.Since(warm) < 500*time.Millisecond {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	base := got.Load()
	start := time.Now()
	for time.Since(start) < dur {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	bits := float64(got.Load()-base) * 8
	el := time.Since(start).Seconds()
	c.Close()
	<-done
	return bits / el, nil
}
