package scenario

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gogo/protobuf/jsonpb"
	gogoproto "github.com/gogo/protobuf/proto"
	"github.com/projectcalico/calico/felix/proto"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/calico-p4/calico-p4/driver/services"
)

// The compiler's ServiceUpdate / ServiceRemove stream equals Felix's in the k8s-services capture, step by
// step: after every step both give the same services with the same content, and the same services were
// sent. (Pods and the `services:` policy rule of the capture are not part of the scenario.)
func TestCompilerReproducesTheK8sServicesCaptureServices(t *testing.T) {
	dir := captureDir(t)
	scn, err := Load("testdata/k8s-services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := Compile(scn)
	if err != nil {
		t.Fatal(err)
	}
	snap, steps := parseSummary(t, filepath.Join(dir, "k8s-services.summary.txt"))
	real := loadCapture(t, filepath.Join(dir, "k8s-services.jsonl"), nil)
	byNum := map[string]captureStep{}
	for _, s := range steps {
		byNum[s.num] = s
	}
	felix := NewState()
	m := jsonpb.Marshaler{}
	str := func(x gogoproto.Message) string { s, _ := m.MarshalToString(x); return s }
	fold := func(seqs []uint64) map[string]bool {
		sent := map[string]bool{}
		for _, n := range seqs {
			msg := real[n]
			switch p := msg.Payload.(type) {
			case *proto.ToDataplane_ServiceUpdate:
				if c, _ := felix.Apply(msg); c {
					sent[serviceKey(p.ServiceUpdate)] = true
				}
			case *proto.ToDataplane_ServiceRemove:
				felix.Apply(msg) //nolint:errcheck // services never error
				sent[p.ServiceRemove.Namespace+"/"+p.ServiceRemove.Name] = true
			}
		}
		return sent
	}
	check := func(label string, felixSent map[string]bool, ours []*proto.ToDataplane, st *State) {
		keys := map[string]bool{}
		for k := range felix.Services {
			keys[k] = true
		}
		for k := range st.Services {
			keys[k] = true
		}
		var ks []string
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			f, g := felix.Services[k], st.Services[k]
			switch {
			case g == nil:
				t.Errorf("%s: service %s missing; Felix has %s", label, k, str(f))
			case f == nil:
				t.Errorf("%s: extra service %s", label, str(g))
			case !gogoproto.Equal(f, g):
				t.Errorf("%s: service %s:\n   felix: %s\n   ours:  %s", label, k, str(f), str(g))
			}
		}
		oursSent := map[string]bool{}
		for _, msg := range ours {
			switch p := msg.Payload.(type) {
			case *proto.ToDataplane_ServiceUpdate:
				oursSent[serviceKey(p.ServiceUpdate)] = true
			case *proto.ToDataplane_ServiceRemove:
				oursSent[p.ServiceRemove.Namespace+"/"+p.ServiceRemove.Name] = true
			}
		}
		if fmt.Sprint(oursSent) != fmt.Sprint(felixSent) {
			t.Errorf("%s: we sent %v, Felix sent %v", label, oursSent, felixSent)
		}
	}
	segments := stepItems(compiled.Items)
	check("snapshot", fold(snap), segments[0], compiled.States[0])
	compared := 0
	for i, st := range scn.Steps {
		num, _, _ := strings.Cut(st.Title, " ")
		cs, ok := byNum[num]
		if !ok {
			t.Fatalf("step %q: the capture has no step %s", st.Title, num)
		}
		check(fmt.Sprintf("step %s (%s)", num, cs.title), fold(cs.seqs), segments[i+1], compiled.States[i+1])
		compared++
	}
	if compared < 17 {
		t.Errorf("compared %d steps", compared)
	}
}

// KubeObjects gives the watch what the API server would hold, with its defaults; the watch joins them
// (driver/services.Build) without a problem, and Felix's view of each service agrees with the watch's.
func TestKubeObjectsAreWhatTheWatchReads(t *testing.T) {
	scn, err := Load("testdata/k8s-services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := Compile(scn)
	if err != nil {
		t.Fatal(err)
	}
	for step := range compiled.States {
		ko, err := scn.KubeObjects(step)
		if err != nil {
			t.Fatal(err)
		}
		if len(ko.Services) != len(compiled.States[step].Services) {
			t.Errorf("step %d: %d services for the watch, %d for Felix", step, len(ko.Services), len(compiled.States[step].Services))
		}
		for _, svc := range ko.Services {
			var sl []*discoveryv1.EndpointSlice
			for _, s := range ko.Slices {
				if s.Namespace == svc.Namespace && s.Labels[discoveryv1.LabelServiceName] == svc.Name {
					sl = append(sl, s)
				}
			}
			ks, problems, err := services.Build(svc, sl)
			if err != nil || len(problems) > 0 {
				t.Fatalf("step %d: %s/%s: %v %v", step, svc.Namespace, svc.Name, err, problems)
			}
			f := compiled.States[step].Services[svc.Namespace+"/"+svc.Name]
			if f == nil || f.Type != ks.Type || len(f.Ports) != len(ks.Ports) {
				t.Errorf("step %d: %s: Felix %v, watch %+v", step, ks.Key, f, ks)
			}
		}
	}
	// The last step: web's slice is gone with it; multi has no slice left.
	ko, _ := scn.KubeObjects(len(scn.Steps))
	if len(ko.Slices) != 1 || ko.Slices[0].Name != "dual-v6" {
		t.Errorf("slices at the end: %v", ko.Slices)
	}
}
