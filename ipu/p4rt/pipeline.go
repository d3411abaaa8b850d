package p4rt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TargetProfile names a kind of P4Runtime target; it decides what the
// forwarding pipeline config carries and how it is pushed.
type TargetProfile string

const (
	// ProfileEmbedded is calico-p4's own softswitch: the P4Info is the whole
	// pipeline config (no device config), and it supports
	// RECONCILE_AND_COMMIT.
	ProfileEmbedded TargetProfile = "embedded"
	// ProfileP4DPDK is infrap4d / OVS-P4 with the P4-DPDK target. Its device
	// config is the ".pb.bin" that the P4-DPDK toolchain's
	// tdi_pipeline_builder packs from the p4c-dpdk outputs (spec, context
	// JSON, bf-rt JSON). Pushed with VERIFY_AND_COMMIT.
	ProfileP4DPDK TargetProfile = "p4-dpdk"
	// ProfileIPUES2K is an Intel IPU E2100 (ES2K) running infrap4d. Its device
	// config is the ".pb.bin" built with the vendor's SDK from the compiled
	// package; calico-p4 does not produce it and will not start without it.
	// Pushed with VERIFY_AND_COMMIT.
	ProfileIPUES2K TargetProfile = "ipu-es2k"
)

// Profiles lists the known target profiles.
var Profiles = []TargetProfile{ProfileEmbedded, ProfileP4DPDK, ProfileIPUES2K}

// needsDeviceConfig reports whether the profile's pipeline needs a device
// config blob.
func (p TargetProfile) needsDeviceConfig() bool { return p == ProfileP4DPDK || p == ProfileIPUES2K }

// SupportsAtomicWrites reports whether the profile's targets apply a
// DATAPLANE_ATOMIC Write as one change that packets see entirely or not at
// all. The embedded softswitch does (its pipeline reads one table snapshot
// per packet, for all of the packet's passes, and an atomic batch is one
// snapshot). P4-DPDK and ES2K targets are not assumed to: infrap4d does not
// document DATAPLANE_ATOMIC, so the programmer writes them in dependency order
// (make-before-break) instead.
func (p TargetProfile) SupportsAtomicWrites() bool { return p == ProfileEmbedded }

// tryReconcile reports whether a pipeline change is first attempted with
// RECONCILE_AND_COMMIT (keeping entries of surviving tables).
func (p TargetProfile) tryReconcile() bool { return p == ProfileEmbedded }

// Pipeline is the forwarding pipeline calico-p4 wants on the target.
type Pipeline struct {
	Profile TargetProfile
	P4Info  *p4configv1.P4Info
	// DeviceConfig is the target-specific p4_device_config (empty for the
	// embedded target).
	DeviceConfig []byte
	// Cookie identifies this pipeline; 0 means "derive it from the P4Info
	// and device config".
	Cookie uint64
}

// PipelineFiles are the paths a pipeline is loaded from.
type PipelineFiles struct {
	// P4Info is the P4Info file (text or binary).
	P4Info string
	// DeviceConfig is the target's device config (P4-DPDK / ES2K ".pb.bin").
	DeviceConfig string
}

// LoadPipeline reads a pipeline for profile from files and checks that it
// has what the profile needs. A non-nil p4info is used instead of reading
// files.P4Info.
func LoadPipeline(profile TargetProfile, files PipelineFiles, p4info *p4configv1.P4Info) (Pipeline, error) {
	p := Pipeline{Profile: profile}
	switch profile {
	case ProfileEmbedded, ProfileP4DPDK, ProfileIPUES2K:
	default:
		return p, fmt.Errorf("p4rt: unknown target profile %q (known: %v)", profile, Profiles)
	}
	p.P4Info = p4info
	if p4info == nil {
		info, err := LoadP4Info(files.P4Info)
		if err != nil {
			return p, err
		}
		p.P4Info = info
	}
	var err error
	switch {
	case profile.needsDeviceConfig() && files.DeviceConfig == "":
		return p, fmt.Errorf("p4rt: target profile %s needs a device config (the .pb.bin built by the "+
			"target's toolchain from the compiled k8s.p4)", profile)
	case !profile.needsDeviceConfig() && files.DeviceConfig != "":
		return p, fmt.Errorf("p4rt: target profile %s takes no device config", profile)
	case files.DeviceConfig != "":
		if p.DeviceConfig, err = os.ReadFile(files.DeviceConfig); err != nil {
			return p, fmt.Errorf("p4rt: read device config: %w", err)
		}
		if len(p.DeviceConfig) == 0 {
			return p, fmt.Errorf("p4rt: device config %s is empty", files.DeviceConfig)
		}
	}
	return p, nil
}

// CookieValue is the pipeline's cookie: Cookie, or a hash of the P4Info and
// device config.
func (p Pipeline) CookieValue() uint64 {
	if p.Cookie != 0 {
		return p.Cookie
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(p.P4Info)
	h := fnv.New64a()
	h.Write(b)
	h.Write([]byte{0})
	h.Write(p.DeviceConfig)
	return h.Sum64() | 1 // never 0
}

func (p Pipeline) config() *p4v1.ForwardingPipelineConfig {
	return &p4v1.ForwardingPipelineConfig{P4Info: p.P4Info, P4DeviceConfig: p.DeviceConfig,
		Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: p.CookieValue()}}
}

// PipelineResult says what EnsurePipeline did.
type PipelineResult string

const (
	// PipelineUnchanged: the target already runs this pipeline.
	PipelineUnchanged PipelineResult = "unchanged"
	// PipelineReconciled: pushed with RECONCILE_AND_COMMIT (state kept).
	PipelineReconciled PipelineResult = "reconciled"
	// PipelineCommitted: pushed with VERIFY_AND_COMMIT (state cleared).
	PipelineCommitted PipelineResult = "committed"
)

// EnsurePipeline makes the target run p: it compares the target's cookie
// (then P4Info and device config) with p's and pushes p only when they
// differ. Primary only.
func (c *Client) EnsurePipeline(ctx context.Context, p Pipeline) (PipelineResult, error) {
	if p.P4Info == nil {
		return "", errors.New("p4rt: pipeline without a P4Info")
	}
	want := p.CookieValue()
	cur, err := c.GetPipeline(ctx, p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY)
	hasPipeline := true
	switch {
	case status.Code(err) == codes.FailedPrecondition || status.Code(err) == codes.NotFound:
		hasPipeline = false
	case err != nil:
		return "", err
	case cur.GetCookie() != nil && cur.GetCookie().GetCookie() == want:
		c.log.Debug("Target already runs our pipeline", zap.Uint64("cookie", want))
		return PipelineUnchanged, nil
	}
	if hasPipeline {
		full, err := c.GetPipeline(ctx, p4v1.GetForwardingPipelineConfigRequest_ALL)
		if err != nil {
			return "", err
		}
		if full.GetP4Info() == nil {
			hasPipeline = false
		} else if proto.Equal(full.GetP4Info(), p.P4Info) && bytes.Equal(full.GetP4DeviceConfig(), p.DeviceConfig) {
			c.log.Info("Target runs the same pipeline under another cookie; not pushing",
				zap.Uint64("target_cookie", full.GetCookie().GetCookie()), zap.Uint64("cookie", want))
			return PipelineUnchanged, nil
		}
	}
	if hasPipeline && p.Profile.tryReconcile() {
		err := c.SetPipeline(ctx, p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT, p.config())
		if err == nil {
			c.log.Info("Pushed pipeline (reconciled, state kept)", zap.Uint64("cookie", want))
			return PipelineReconciled, nil
		}
		if errors.Is(err, ErrNotPrimary) {
			return "", err
		}
		c.log.Warn("RECONCILE_AND_COMMIT refused; pushing with VERIFY_AND_COMMIT (the target's entries are cleared)", zap.Error(err))
	}
	if err := c.SetPipeline(ctx, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, p.config()); err != nil {
		return "", err
	}
	c.log.Info("Pushed pipeline (committed)", zap.Uint64("cookie", want), zap.String("profile", string(p.Profile)))
	return PipelineCommitted, nil
}
