package topology

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// RegistryDir holds one file per live run: <run id>.pid with "<pid> <process start time>".
const RegistryDir = "/run/calico-p4-e2e"

func register(runID string) (string, error) {
	if err := os.MkdirAll(RegistryDir, 0o755); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	start, err := procStart(os.Getpid())
	if err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	path := filepath.Join(RegistryDir, runID+".pid")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("registry: run id %s in use: %w", runID, err)
	}
	_, err = fmt.Fprintf(f, "%d %s\n", os.Getpid(), start)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("registry: %w", err)
	}
	return path, nil
}

// procStart returns field 22 (start time in clock ticks) of /proc/<pid>/stat, to tell a live run from a
// recycled PID.
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) may contain spaces; fields after the last ')' are space-separated.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return f[19], nil // field 22 overall = index 19 after pid and comm
}

// runAlive reports whether the run that registered runID is still running.
func runAlive(runID string) bool {
	b, err := os.ReadFile(filepath.Join(RegistryDir, runID+".pid"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	start, err := procStart(pid)
	return err == nil && start == f[1]
}

// Sweep removes the namespaces (and registry entries) of runs whose process is gone, e.g. after a crash or
// SIGKILL. Runs still alive, including parallel ones, are left alone. It returns the namespaces removed.
func Sweep(log *zap.Logger) ([]string, error) {
	if log == nil {
		log = zap.NewNop()
	}
	entries, err := os.ReadDir(netnsutil.RunDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	var removed []string
	var errs []error
	dead := map[string]bool{}
	for _, e := range entries {
		id := runIDOf(e.Name())
		if id == "" {
			continue
		}
		d, seen := dead[id]
		if !seen {
			d = !runAlive(id)
			dead[id] = d
		}
		if !d {
			continue
		}
		if err := netnsutil.DeleteNamed(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
		log.Info("swept leftover namespace", zap.String("netns", e.Name()), zap.String("run", id))
	}
	regs, _ := os.ReadDir(RegistryDir)
	for _, r := range regs {
		id := strings.TrimSuffix(r.Name(), ".pid")
		if validRunID(id) && !runAlive(id) {
			_ = os.Remove(filepath.Join(RegistryDir, r.Name()))
		}
	}
	return removed, errors.Join(errs...)
}
