package programmer

import (
	"context"
	"fmt"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
)

// Options is everything the manager needs to program a target.
type Options struct {
	// Address of the target's P4Runtime server ("host:port", "unix:///path").
	Address string
	// Profile of the target (embedded, p4-dpdk, ipu-es2k).
	Profile p4rt.TargetProfile
	// DeviceID is the P4Runtime device id (default 1).
	DeviceID uint64
	// ElectionID of this manager; the highest live one programs the target.
	ElectionID p4rt.Uint128
	// Role is the P4Runtime role ("" for the default role).
	Role string
	// TLS to the target (nil: plaintext).
	TLS *p4rt.TLSConfig
	// P4Info is the program's P4Info; if nil it is loaded from P4InfoPath.
	P4Info     *p4configv1.P4Info
	P4InfoPath string
	// DeviceConfigPath is the target's device config (p4-dpdk, ipu-es2k).
	DeviceConfigPath string
	// BatchSize of Write RPCs (default 1000) when writes are not atomic.
	BatchSize int
	// TableOrder is the write order of the tables (Config.TableOrder; for
	// k8s.p4 p4src.WriteOrderNames()).
	TableOrder [][]string
	// WriteMode chooses atomic or ordered writes (default: what the profile
	// supports, see WriteMode).
	WriteMode WriteMode
	// MaxAtomicBytes bounds one atomic write (Config.MaxAtomicBytes).
	MaxAtomicBytes int
	// DeleteGrace overrides the profile's default wait between the inserts
	// and modifies of an ordered pass and its deletes (negative: none).
	DeleteGrace time.Duration
	// UnmanagedTables are never read, written or deleted.
	UnmanagedTables []string
	Logger          *zap.Logger
	// Registry receives calico_p4_p4rt_* and calico_p4_programmer_* metrics.
	Registry prometheus.Registerer
}

// WriteMode is how a pass reaches the target.
type WriteMode string

const (
	// WriteModeAuto is WriteModeAtomic for profiles whose targets apply
	// atomic writes as one change (p4rt.TargetProfile.SupportsAtomicWrites:
	// the embedded target), WriteModeOrdered for the others.
	WriteModeAuto WriteMode = ""
	// WriteModeAtomic sends each pass as DATAPLANE_ATOMIC writes in write
	// order: packets see the old entries or the new ones.
	WriteModeAtomic WriteMode = "atomic"
	// WriteModeOrdered sends each pass as CONTINUE_ON_ERROR batches, stage by
	// stage in write order (make-before-break).
	WriteModeOrdered WriteMode = "ordered"
)

func (m WriteMode) atomic(profile p4rt.TargetProfile) bool {
	switch m {
	case WriteModeAtomic:
		return true
	case WriteModeOrdered:
		return false
	}
	return profile.SupportsAtomicWrites()
}

// DefaultDeleteGrace is the wait between the modifies and the deletes of an
// ordered pass on P4-DPDK and ES2K targets: a packet that read an entry before
// a modify stopped pointing at what is deleted next (an old policy version,
// say) finishes its passes well within it.
const DefaultDeleteGrace = time.Millisecond

// Open dials the target and returns a programmer for it. Call Run in the
// background (it reconciles whenever the session is new and retries what
// failed), Sync with each new desired state, and Close at the end.
func Open(ctx context.Context, o Options) (*Programmer, error) {
	if o.Profile == "" {
		o.Profile = p4rt.ProfileEmbedded
	}
	switch o.WriteMode {
	case WriteModeAuto, WriteModeAtomic, WriteModeOrdered:
	default:
		return nil, fmt.Errorf("programmer: unknown write mode %q (want %q or %q)", o.WriteMode, WriteModeAtomic, WriteModeOrdered)
	}
	if o.DeviceID == 0 {
		o.DeviceID = 1
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	var pl p4rt.Pipeline
	var err error
	if o.P4Info != nil {
		pl = p4rt.Pipeline{Profile: o.Profile, P4Info: o.P4Info}
		if o.DeviceConfigPath != "" || o.Profile != p4rt.ProfileEmbedded {
			loaded, err := p4rt.LoadPipeline(o.Profile, p4rt.PipelineFiles{P4Info: "", DeviceConfig: o.DeviceConfigPath}, o.P4Info)
			if err != nil {
				return nil, err
			}
			pl = loaded
		}
	} else {
		if pl, err = p4rt.LoadPipeline(o.Profile, p4rt.PipelineFiles{P4Info: o.P4InfoPath, DeviceConfig: o.DeviceConfigPath}, nil); err != nil {
			return nil, err
		}
	}
	info, err := p4rt.NewInfo(pl.P4Info)
	if err != nil {
		return nil, fmt.Errorf("programmer: %w", err)
	}
	client, err := p4rt.Dial(ctx, p4rt.Config{Address: o.Address, DeviceID: o.DeviceID, ElectionID: o.ElectionID,
		Role: o.Role, TLS: o.TLS, Logger: o.Logger.Named("p4rt"), Metrics: p4rt.NewMetrics(o.Registry)})
	if err != nil {
		return nil, err
	}
	atomic := o.WriteMode.atomic(o.Profile)
	grace := o.DeleteGrace
	switch {
	case grace < 0:
		grace = 0
	case grace == 0 && !atomic && o.Profile != p4rt.ProfileEmbedded:
		grace = DefaultDeleteGrace
	}
	p, err := New(client, info, Config{Pipeline: pl, BatchSize: o.BatchSize, UnmanagedTables: o.UnmanagedTables,
		TableOrder: o.TableOrder, Atomic: atomic, MaxAtomicBytes: o.MaxAtomicBytes, DeleteGrace: grace,
		Logger: o.Logger.Named("programmer"), Registerer: o.Registry})
	if err != nil {
		client.Close()
		return nil, err
	}
	p.closer = client.Close
	return p, nil
}

// Close closes the session the programmer opened (Open only).
func (p *Programmer) Close() error {
	if p.closer == nil {
		return nil
	}
	return p.closer()
}
