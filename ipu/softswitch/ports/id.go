package ports

import (
	"fmt"
	"hash/fnv"
	"sync"
)

// Reserved port ids (below FirstID).
const (
	// CPUPort is the controller's port: packets the pipeline sends to it become P4Runtime packet-ins;
	// packet-outs enter the pipeline as received on it.
	CPUPort uint32 = 0xfd
	// FirstID and LastID bound the ids derived from interface names.
	FirstID uint32 = 0x100
	LastID  uint32 = 0x7fffffff
)

// IDForName is the port id of an interface name (docs/architecture.md, "Port ids"): the 32-bit FNV-1a
// hash of the name folded into [FirstID, LastID] as FirstID + hash mod (LastID - FirstID + 1). The
// manager, the translator and the target derive it independently, so they agree across restarts.
func IDForName(name string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return FirstID + h.Sum32()%(LastID-FirstID+1)
}

// CollisionError is returned when two attached names hash to the same port id.
type CollisionError struct {
	Name, Other string
	ID          uint32
}

func (e *CollisionError) Error() string {
	return fmt.Sprintf("port id %#x of interface %q collides with attached interface %q", e.ID, e.Name, e.Other)
}

// idMap holds the names attached under each id, refusing collisions.
type idMap struct {
	mu     sync.Mutex
	byID   map[uint32]string
	byName map[string]uint32
}

func newIDMap() *idMap { return &idMap{byID: map[uint32]string{}, byName: map[string]uint32{}} }

func (m *idMap) claim(name string) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byName[name]; ok {
		return id, nil
	}
	id := IDForName(name)
	if other, ok := m.byID[id]; ok {
		return 0, &CollisionError{Name: name, Other: other, ID: id}
	}
	m.byID[id] = name
	m.byName[name] = id
	return id, nil
}

func (m *idMap) release(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byName[name]; ok {
		delete(m.byName, name)
		delete(m.byID, id)
	}
}
