package softswitch_test

import (
	"testing"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
)

// The conformance table: one case per validation rule and status code of P4Runtime 1.4 §9 (entities),
// §8.4 (bytestrings) and §12 (Write), each driven through a real gRPC client against a freshly
// committed pipeline. setup must succeed; then update is sent alone and must fail (or succeed) with
// want, reported as the per-update p4.v1.Error of an UNKNOWN status.

type confCase struct {
	name   string
	setup  []*p4.Update
	update *p4.Update
	want   codes.Code
}

// Shorthands for the test P4Info.
var (
	mac5    = exact(1, 0x02, 0, 0, 0, 0, 5)
	port1   = exact(2, 1)
	setPort = act(aSetPort, param(1, 3))
)

func aclEntry(prio int32, a *p4.TableAction, ms ...*p4.FieldMatch) *p4.Entity {
	return te(tACL, prio, a, append([]*p4.FieldMatch{exact(5, 6)}, ms...)...)
}

func defaultEntry(table uint32, a *p4.TableAction) *p4.Entity {
	return entTE(&p4.TableEntry{TableId: table, IsDefaultAction: true, Action: a})
}

func withTE(e *p4.Entity, f func(*p4.TableEntry)) *p4.Entity {
	f(e.GetTableEntry())
	return e
}

func counterEntry(id uint32, idx *p4.Index, pkts int64) *p4.Entity {
	return &p4.Entity{Entity: &p4.Entity_CounterEntry{CounterEntry: &p4.CounterEntry{CounterId: id, Index: idx, Data: &p4.CounterData{PacketCount: pkts}}}}
}

func directCounter(e *p4.Entity, pkts int64) *p4.Entity {
	return &p4.Entity{Entity: &p4.Entity_DirectCounterEntry{DirectCounterEntry: &p4.DirectCounterEntry{TableEntry: e.GetTableEntry(), Data: &p4.CounterData{PacketCount: pkts}}}}
}

func register(id uint32, idx *p4.Index, d *p4.P4Data) *p4.Entity {
	return &p4.Entity{Entity: &p4.Entity_RegisterEntry{RegisterEntry: &p4.RegisterEntry{RegisterId: id, Index: idx, Data: d}}}
}

func bits(b ...byte) *p4.P4Data { return &p4.P4Data{Data: &p4.P4Data_Bitstring{Bitstring: b}} }

func digest(id uint32, cfg *p4.DigestEntry_Config) *p4.Entity {
	return &p4.Entity{Entity: &p4.Entity_DigestEntry{DigestEntry: &p4.DigestEntry{DigestId: id, Config: cfg}}}
}

func oneShot(actions ...*p4.ActionProfileAction) *p4.TableAction {
	return &p4.TableAction{Type: &p4.TableAction_ActionProfileActionSet{ActionProfileActionSet: &p4.ActionProfileActionSet{ActionProfileActions: actions}}}
}

func osa(n byte, weight int32) *p4.ActionProfileAction {
	return &p4.ActionProfileAction{Action: nhop(n, 1), Weight: weight}
}

func oneShotEntry(dst byte, a *p4.TableAction) *p4.Entity {
	return te(tOneShot, 0, a, exact(1, 10, 0, 0, dst))
}

func ecmpEntry(dst byte, a *p4.TableAction) *p4.Entity {
	return te(tECMP, 0, a, exact(1, 10, 0, 0, dst))
}

func idx(i int64) *p4.Index { return &p4.Index{Index: i} }

func conformanceCases() []confCase {
	small := func(n byte) *p4.Update { return ins(te(tSmall, 0, setPort, exact(1, n))) }
	plainMember := func(id uint32) *p4.Update {
		return ins(member(pPlain, id, &p4.Action{ActionId: aSetPort, Params: []*p4.Action_Param{param(1, byte(id))}}))
	}
	ecmpMember := func(id uint32) *p4.Update { return ins(member(pECMP, id, nhop(byte(id), 1))) }
	return []confCase{
		// Table entries: identity and lifecycle.
		{"insert of a valid entry", nil, ins(exactEntry(5, 3)), codes.OK},
		{"insert of an existing entry", []*p4.Update{ins(exactEntry(5, 3))}, ins(exactEntry(5, 4)), codes.AlreadyExists},
		{"modify of a missing entry", nil, mod(exactEntry(5, 3)), codes.NotFound},
		{"delete of a missing entry", nil, del(exactEntry(5, 3)), codes.NotFound},
		{"modify of an existing entry", []*p4.Update{ins(exactEntry(5, 3))}, mod(exactEntry(5, 4)), codes.OK},
		{"delete ignores non-key fields", []*p4.Update{ins(exactEntry(5, 3))}, del(te(tExact, 0, act(0xdead), mac5, port1)), codes.OK},
		{"table id 0", nil, ins(te(0, 0, setPort, mac5)), codes.InvalidArgument},
		{"unknown table id", nil, ins(te(0x0200ffff, 0, setPort, mac5)), codes.NotFound},
		{"update type unspecified", nil, &p4.Update{Entity: exactEntry(5, 3)}, codes.InvalidArgument},
		{"update without entity", nil, &p4.Update{Type: p4.Update_INSERT}, codes.InvalidArgument},
		{"is_const set in a write", nil, ins(withTE(exactEntry(5, 3), func(t *p4.TableEntry) { t.IsConst = true })), codes.InvalidArgument},
		{"table full", []*p4.Update{small(1), small(2), small(3), small(4)}, small(5), codes.ResourceExhausted},
		// Match fields.
		{"unknown match field id", nil, ins(te(tExact, 0, setPort, mac5, port1, exact(9, 1))), codes.InvalidArgument},
		{"match field given twice", nil, ins(te(tExact, 0, setPort, mac5, port1, exact(2, 1))), codes.InvalidArgument},
		{"exact field missing", nil, ins(te(tExact, 0, setPort, mac5)), codes.InvalidArgument},
		{"wrong match kind for the field", nil, ins(te(tExact, 0, setPort, mac5, lpm(2, 9, 1))), codes.InvalidArgument},
		{"field match type unset", nil, ins(te(tExact, 0, setPort, mac5, &p4.FieldMatch{FieldId: 2})), codes.InvalidArgument},
		{"value wider than the field", nil, ins(te(tExact, 0, setPort, mac5, exact(2, 0x02, 0x00))), codes.OutOfRange},
		{"value longer than the field with a non-zero top byte", nil, ins(te(tExact, 0, setPort, exact(1, 1, 0, 0, 0, 0, 0, 5), port1)), codes.OutOfRange},
		{"empty bytestring", nil, ins(te(tExact, 0, setPort, mac5, exact(2))), codes.OutOfRange},
		{"zero-padded bytestring is accepted", nil, ins(te(tExact, 0, setPort, mac5, exact(2, 0, 0, 1))), codes.OK},
		{"priority on a table without ternary/range/optional", nil, ins(te(tExact, 10, setPort, mac5, port1)), codes.InvalidArgument},
		{"lpm prefix length 0", nil, ins(te(tLPM, 0, act(aDrop), exact(1, 1), lpm(2, 0, 10, 0, 0, 0))), codes.InvalidArgument},
		{"lpm prefix longer than the field", nil, ins(te(tLPM, 0, act(aDrop), exact(1, 1), lpm(2, 33, 10, 0, 0, 0))), codes.InvalidArgument},
		{"lpm value bits beyond the prefix", nil, ins(te(tLPM, 0, act(aDrop), exact(1, 1), lpm(2, 8, 10, 1, 0, 0))), codes.InvalidArgument},
		{"lpm entry", nil, ins(te(tLPM, 0, act(aDrop), exact(1, 1), lpm(2, 24, 10, 1, 2, 0))), codes.OK},
		{"lpm don't-care entry (field omitted)", nil, ins(te(tLPM, 0, act(aDrop), exact(1, 1))), codes.OK},
		{"priority missing where required", nil, ins(aclEntry(0, act(aDeny))), codes.InvalidArgument},
		{"negative priority", nil, ins(aclEntry(-1, act(aDeny))), codes.InvalidArgument},
		{"ternary mask zero", nil, ins(aclEntry(1, act(aDeny), tern(1, []byte{0}, []byte{0}))), codes.InvalidArgument},
		{"ternary value outside the mask", nil, ins(aclEntry(1, act(aDeny), tern(1, []byte{10, 0, 0, 1}, []byte{0xff, 0xff, 0xff, 0}))), codes.InvalidArgument},
		{"ternary mask wider than the field", nil, ins(aclEntry(1, act(aDeny), tern(1, []byte{1}, []byte{1, 0, 0, 0, 0}))), codes.OutOfRange},
		{"range low above high", nil, ins(aclEntry(1, act(aDeny), rng(3, []byte{0x10}, []byte{0x01}))), codes.InvalidArgument},
		{"range covering every value", nil, ins(aclEntry(1, act(aDeny), rng(3, []byte{0}, []byte{0xff, 0xff}))), codes.InvalidArgument},
		{"entry with every match kind", nil, ins(aclEntry(5, act(aDeny), tern(1, []byte{10, 0, 0, 0}, []byte{0xff, 0, 0, 0}),
			lpm(2, 16, 10, 1, 0, 0), rng(3, []byte{80}, []byte{0x01, 0xbb}), opt(4, 1))), codes.OK},
		{"same match at another priority is another entry", []*p4.Update{ins(aclEntry(5, act(aDeny)))}, ins(aclEntry(6, act(aDeny))), codes.OK},
		{"same match and priority", []*p4.Update{ins(aclEntry(5, act(aDeny)))}, ins(aclEntry(5, act(aPermit))), codes.AlreadyExists},
		// Actions.
		{"insert without action", nil, ins(te(tExact, 0, nil, mac5, port1)), codes.InvalidArgument},
		{"action id 0", nil, ins(te(tExact, 0, act(0), mac5, port1)), codes.InvalidArgument},
		{"action not in the table", nil, ins(te(tExact, 0, act(aPermit), mac5, port1)), codes.InvalidArgument},
		{"unknown param id", nil, ins(te(tExact, 0, act(aSetPort, param(1, 3), param(7, 1)), mac5, port1)), codes.InvalidArgument},
		{"missing param", nil, ins(te(tExact, 0, act(aSetPort), mac5, port1)), codes.InvalidArgument},
		{"param given twice", nil, ins(te(tExact, 0, act(aSetPort, param(1, 3), param(1, 4)), mac5, port1)), codes.InvalidArgument},
		{"param wider than declared", nil, ins(te(tExact, 0, act(aSetPort, param(1, 0x02, 0x00)), mac5, port1)), codes.OutOfRange},
		{"empty param", nil, ins(te(tExact, 0, act(aSetPort, param(1)), mac5, port1)), codes.OutOfRange},
		{"@defaultonly action in an entry", nil, ins(aclEntry(1, act(aDefaultDeny))), codes.PermissionDenied},
		{"member id in a direct table", nil, ins(te(tExact, 0, memberAct(1), mac5, port1)), codes.InvalidArgument},
		{"empty table action", nil, ins(te(tExact, 0, &p4.TableAction{}, mac5, port1)), codes.InvalidArgument},
		{"modify without action keeps it", []*p4.Update{ins(exactEntry(5, 3))}, mod(te(tExact, 0, nil, mac5, port1)), codes.OK},
		// Direct resources, idle timeout, meters.
		{"time_since_last_hit in a write", nil, ins(withTE(exactEntry(5, 3), func(t *p4.TableEntry) { t.TimeSinceLastHit = &p4.TableEntry_IdleTimeout{} })), codes.InvalidArgument},
		{"idle timeout on a table without it", nil, ins(withTE(exactEntry(5, 3), func(t *p4.TableEntry) { t.IdleTimeoutNs = 1e9 })), codes.InvalidArgument},
		{"negative idle timeout", nil, ins(withTE(te(tIdle, 0, setPort, exact(1, 1)), func(t *p4.TableEntry) { t.IdleTimeoutNs = -1 })), codes.InvalidArgument},
		{"idle timeout on a table with it", nil, ins(withTE(te(tIdle, 0, setPort, exact(1, 1)), func(t *p4.TableEntry) { t.IdleTimeoutNs = 1e9 })), codes.OK},
		{"counter data on a table without direct counter", nil, ins(withTE(te(tLPM, 0, act(aDrop), exact(1, 1)), func(t *p4.TableEntry) { t.CounterData = &p4.CounterData{} })), codes.InvalidArgument},
		{"counter data on a table with a direct counter", nil, ins(withTE(exactEntry(5, 3), func(t *p4.TableEntry) { t.CounterData = &p4.CounterData{PacketCount: 5} })), codes.OK},
		{"direct meter config", nil, ins(withTE(exactEntry(5, 3), func(t *p4.TableEntry) { t.MeterConfig = &p4.MeterConfig{Cir: 1} })), codes.Unimplemented},
		// Default entries.
		{"insert of a default entry", nil, ins(defaultEntry(tACL, act(aDeny))), codes.InvalidArgument},
		{"delete of a default entry", nil, del(defaultEntry(tACL, nil)), codes.InvalidArgument},
		{"default entry with a match", nil, mod(withTE(defaultEntry(tACL, act(aDeny)), func(t *p4.TableEntry) { t.Match = []*p4.FieldMatch{exact(5, 6)} })), codes.InvalidArgument},
		{"default entry with a priority", nil, mod(withTE(defaultEntry(tACL, act(aDeny)), func(t *p4.TableEntry) { t.Priority = 3 })), codes.InvalidArgument},
		{"@tableonly action as default", nil, mod(defaultEntry(tACL, act(aPermit))), codes.PermissionDenied},
		{"default entry modified", nil, mod(defaultEntry(tACL, act(aDeny))), codes.OK},
		{"default entry reset (no action)", []*p4.Update{mod(defaultEntry(tACL, act(aDeny)))}, mod(defaultEntry(tACL, nil)), codes.OK},
		{"const default action modified", nil, mod(defaultEntry(tConstDefault, act(aSetPort, param(1, 1)))), codes.PermissionDenied},
		{"default of an indirect table modified", nil, mod(defaultEntry(tECMP, act(aNoAction))), codes.PermissionDenied},
		{"idle timeout on a default entry", nil, mod(withTE(defaultEntry(tIdle, act(aNoAction)), func(t *p4.TableEntry) { t.IdleTimeoutNs = 1e9 })), codes.InvalidArgument},
		{"default entry with a member", nil, mod(defaultEntry(tExact, memberAct(1))), codes.InvalidArgument},
		{"insert into a keyless table", nil, ins(te(tKeyless, 0, act(aDrop))), codes.InvalidArgument},
		{"keyless table default modified", nil, mod(defaultEntry(tKeyless, act(aDrop))), codes.OK},
		{"insert into a const table", nil, ins(te(tConst, 0, act(aDrop), exact(1, 6))), codes.PermissionDenied},
		{"delete from a const table", nil, del(te(tConst, 0, act(aDrop), exact(1, 6))), codes.PermissionDenied},
		// Action profile members.
		{"member insert", nil, plainMember(1), codes.OK},
		{"member insert of an existing id", []*p4.Update{plainMember(1)}, plainMember(1), codes.AlreadyExists},
		{"member of profile id 0", nil, ins(member(0, 1, &p4.Action{ActionId: aDrop})), codes.InvalidArgument},
		{"member of an unknown profile", nil, ins(member(0x11000fff, 1, &p4.Action{ActionId: aDrop})), codes.NotFound},
		{"member id 0", nil, ins(member(pPlain, 0, &p4.Action{ActionId: aDrop})), codes.InvalidArgument},
		{"member without action", nil, ins(member(pPlain, 1, nil)), codes.InvalidArgument},
		{"member with an action of another table", nil, ins(member(pPlain, 1, &p4.Action{ActionId: aPermit})), codes.InvalidArgument},
		{"member with a bad param", nil, ins(member(pPlain, 1, &p4.Action{ActionId: aSetPort, Params: []*p4.Action_Param{param(1, 2, 0)}})), codes.OutOfRange},
		{"member modify of a missing id", nil, mod(member(pPlain, 1, &p4.Action{ActionId: aDrop})), codes.NotFound},
		{"member modify", []*p4.Update{plainMember(1)}, mod(member(pPlain, 1, &p4.Action{ActionId: aDrop})), codes.OK},
		{"member delete of a missing id", nil, del(member(pPlain, 1, nil)), codes.NotFound},
		{"member delete while an entry uses it", []*p4.Update{plainMember(1), ins(te(tProfile, 0, memberAct(1), exact(1, 1)))}, del(member(pPlain, 1, nil)), codes.FailedPrecondition},
		{"member delete while a group uses it", []*p4.Update{ecmpMember(1), ins(group(pECMP, 1, 4, gm(1, 1)))}, del(member(pECMP, 1, nil)), codes.FailedPrecondition},
		{"profile full", []*p4.Update{plainMember(1), plainMember(2), plainMember(3), plainMember(4), plainMember(5), plainMember(6), plainMember(7), plainMember(8)}, plainMember(9), codes.ResourceExhausted},
		{"entry pointing at a missing member", nil, ins(te(tProfile, 0, memberAct(9), exact(1, 1))), codes.NotFound},
		{"direct action in an indirect table", nil, ins(te(tProfile, 0, setPort, exact(1, 1))), codes.InvalidArgument},
		{"group in a table without selector", []*p4.Update{plainMember(1)}, ins(te(tProfile, 0, groupAct(1), exact(1, 1))), codes.InvalidArgument},
		// Action selector groups.
		{"group insert", []*p4.Update{ecmpMember(1), ecmpMember(2)}, ins(group(pECMP, 1, 8, gm(1, 1), gm(2, 3))), codes.OK},
		{"group on a profile without selector", []*p4.Update{plainMember(1)}, ins(group(pPlain, 1, 0, gm(1, 1))), codes.InvalidArgument},
		{"group id 0", nil, ins(group(pECMP, 0, 4)), codes.InvalidArgument},
		{"group insert of an existing id", []*p4.Update{ins(group(pECMP, 1, 4))}, ins(group(pECMP, 1, 4)), codes.AlreadyExists},
		{"group with a missing member", nil, ins(group(pECMP, 1, 4, gm(7, 1))), codes.NotFound},
		{"group with a member twice", []*p4.Update{ecmpMember(1)}, ins(group(pECMP, 1, 4, gm(1, 1), gm(1, 2))), codes.InvalidArgument},
		{"group member weight 0", []*p4.Update{ecmpMember(1)}, ins(group(pECMP, 1, 4, gm(1, 0))), codes.InvalidArgument},
		{"group max_size above max_group_size", nil, ins(group(pECMP, 1, 17)), codes.InvalidArgument},
		{"group max_size 0 when max_group_size is set", nil, ins(group(pECMP, 1, 0)), codes.InvalidArgument},
		{"group weights above max_size", []*p4.Update{ecmpMember(1), ecmpMember(2)}, ins(group(pECMP, 1, 4, gm(1, 3), gm(2, 2))), codes.ResourceExhausted},
		{"group modify changing max_size", []*p4.Update{ins(group(pECMP, 1, 4))}, mod(group(pECMP, 1, 8)), codes.InvalidArgument},
		{"group modify of a missing id", nil, mod(group(pECMP, 1, 4)), codes.NotFound},
		{"group delete of a missing id", nil, del(group(pECMP, 1, 4)), codes.NotFound},
		{"group delete while an entry uses it", []*p4.Update{ins(group(pECMP, 1, 4)), ins(ecmpEntry(1, groupAct(1)))}, del(group(pECMP, 1, 0)), codes.FailedPrecondition},
		{"selector capacity exhausted", []*p4.Update{ecmpMember(1), ins(group(pECMP, 1, 16, gm(1, 16))), ins(group(pECMP, 2, 16, gm(1, 16))),
			ins(group(pECMP, 3, 16, gm(1, 16))), ins(group(pECMP, 4, 16, gm(1, 16)))}, ins(group(pECMP, 5, 16, gm(1, 1))), codes.ResourceExhausted},
		{"member weight above max_member_weight", []*p4.Update{ins(member(pMembers, 1, nhop(1, 1)))}, ins(group(pMembers, 1, 4, gm(1, 11))), codes.InvalidArgument},
		{"watch port wider than a port", []*p4.Update{ecmpMember(1)}, ins(group(pECMP, 1, 4, &p4.ActionProfileGroup_Member{MemberId: 1, Weight: 1,
			WatchKind: &p4.ActionProfileGroup_Member_WatchPort{WatchPort: []byte{1, 0, 0, 0, 0}}})), codes.InvalidArgument},
		{"entry pointing at a missing group", nil, ins(ecmpEntry(1, groupAct(3))), codes.NotFound},
		{"entry pointing at a group", []*p4.Update{ins(group(pECMP, 1, 4))}, ins(ecmpEntry(1, groupAct(1))), codes.OK},
		// One-shot action selector programming.
		{"one-shot entry", nil, ins(oneShotEntry(1, oneShot(osa(1, 2), osa(2, 3)))), codes.OK},
		{"one-shot weight 0", nil, ins(oneShotEntry(1, oneShot(osa(1, 0)))), codes.InvalidArgument},
		{"one-shot with more actions than max_group_size", nil, ins(oneShotEntry(1, oneShot(osa(1, 1), osa(2, 1), osa(3, 1), osa(4, 1), osa(5, 1)))), codes.InvalidArgument},
		{"one-shot weight above max_member_weight", nil, ins(oneShotEntry(1, oneShot(osa(1, 11)))), codes.InvalidArgument},
		{"one-shot with an action of another table", nil, ins(oneShotEntry(1, oneShot(&p4.ActionProfileAction{Action: &p4.Action{ActionId: aDrop}, Weight: 1}))), codes.InvalidArgument},
		{"one-shot in a table without selector", nil, ins(te(tProfile, 0, oneShot(osa(1, 1)), exact(1, 1))), codes.InvalidArgument},
		{"member insert after one-shot programming", []*p4.Update{ins(oneShotEntry(1, oneShot(osa(1, 1))))}, ins(member(pMembers, 1, nhop(1, 1))), codes.InvalidArgument},
		{"one-shot after member programming", []*p4.Update{ins(member(pMembers, 1, nhop(1, 1)))}, ins(oneShotEntry(1, oneShot(osa(1, 1)))), codes.InvalidArgument},
		// Indexed counters.
		{"counter modify", nil, mod(counterEntry(cPortPkts, idx(3), 9)), codes.OK},
		{"counter modify of the whole array", nil, mod(counterEntry(cPortPkts, nil, 0)), codes.OK},
		{"counter insert", nil, ins(counterEntry(cPortPkts, idx(3), 9)), codes.InvalidArgument},
		{"counter delete", nil, del(counterEntry(cPortPkts, idx(3), 9)), codes.InvalidArgument},
		{"counter id 0", nil, mod(counterEntry(0, idx(3), 9)), codes.InvalidArgument},
		{"unknown counter", nil, mod(counterEntry(0x12000fff, idx(3), 9)), codes.NotFound},
		{"negative counter index", nil, mod(counterEntry(cPortPkts, idx(-1), 9)), codes.InvalidArgument},
		{"counter index beyond the size", nil, mod(counterEntry(cPortPkts, idx(512), 9)), codes.OutOfRange},
		{"negative counter value", nil, mod(counterEntry(cPortPkts, idx(1), -9)), codes.InvalidArgument},
		// Direct counters.
		{"direct counter modify", []*p4.Update{ins(exactEntry(5, 3))}, mod(directCounter(exactEntry(5, 3), 7)), codes.OK},
		{"direct counter of a missing entry", nil, mod(directCounter(exactEntry(5, 3), 7)), codes.NotFound},
		{"direct counter insert", []*p4.Update{ins(exactEntry(5, 3))}, ins(directCounter(exactEntry(5, 3), 7)), codes.InvalidArgument},
		{"direct counter of a table without one", []*p4.Update{ins(te(tLPM, 0, act(aDrop), exact(1, 1)))}, mod(directCounter(te(tLPM, 0, nil, exact(1, 1)), 7)), codes.InvalidArgument},
		{"direct counter of a default entry", nil, mod(directCounter(defaultEntry(tExact, nil), 7)), codes.OK},
		// Registers.
		{"register modify", nil, mod(register(rReg32, idx(2), bits(1, 2, 3, 4))), codes.OK},
		{"register modify of the whole array", nil, mod(register(rReg32, nil, bits(7))), codes.OK},
		{"register insert", nil, ins(register(rReg32, idx(2), bits(1))), codes.InvalidArgument},
		{"unknown register", nil, mod(register(0x16000fff, idx(2), bits(1))), codes.NotFound},
		{"register index beyond the size", nil, mod(register(rReg32, idx(16), bits(1))), codes.OutOfRange},
		{"negative register index", nil, mod(register(rReg32, idx(-2), bits(1))), codes.InvalidArgument},
		{"register value wider than its type", nil, mod(register(rReg32, idx(2), bits(1, 0, 0, 0, 0))), codes.OutOfRange},
		{"register data missing", nil, mod(register(rReg32, idx(2), nil)), codes.InvalidArgument},
		{"register data of the wrong kind", nil, mod(register(rReg32, idx(2), &p4.P4Data{Data: &p4.P4Data_Bool{Bool: true}})), codes.InvalidArgument},
		{"signed register value out of range", nil, mod(register(rSigned, idx(0), bits(0x00, 0x80, 0x00))), codes.OutOfRange},
		{"signed register negative value", nil, mod(register(rSigned, idx(0), bits(0xff, 0xfe))), codes.OK},
		// Digests.
		{"digest enabled", nil, ins(digest(dgMac, &p4.DigestEntry_Config{MaxTimeoutNs: 1e6, MaxListSize: 10, AckTimeoutNs: 1e9})), codes.OK},
		{"digest enabled twice", []*p4.Update{ins(digest(dgMac, &p4.DigestEntry_Config{}))}, ins(digest(dgMac, &p4.DigestEntry_Config{})), codes.AlreadyExists},
		{"digest modify when disabled", nil, mod(digest(dgMac, &p4.DigestEntry_Config{})), codes.NotFound},
		{"digest delete when disabled", nil, del(digest(dgMac, nil)), codes.NotFound},
		{"digest without config", nil, ins(digest(dgMac, nil)), codes.InvalidArgument},
		{"digest with a negative config", nil, ins(digest(dgMac, &p4.DigestEntry_Config{MaxListSize: -1})), codes.InvalidArgument},
		{"unknown digest", nil, ins(digest(0x17000fff, &p4.DigestEntry_Config{})), codes.NotFound},
		// Entities the embedded target does not implement.
		{"meter entry", nil, mod(&p4.Entity{Entity: &p4.Entity_MeterEntry{MeterEntry: &p4.MeterEntry{MeterId: mMeter}}}), codes.Unimplemented},
		{"direct meter entry", nil, mod(&p4.Entity{Entity: &p4.Entity_DirectMeterEntry{DirectMeterEntry: &p4.DirectMeterEntry{}}}), codes.Unimplemented},
		{"multicast group", nil, ins(&p4.Entity{Entity: &p4.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4.PacketReplicationEngineEntry{}}}), codes.Unimplemented},
		{"value set", nil, mod(&p4.Entity{Entity: &p4.Entity_ValueSetEntry{ValueSetEntry: &p4.ValueSetEntry{}}}), codes.Unimplemented},
		{"extern entry", nil, mod(&p4.Entity{Entity: &p4.Entity_ExternEntry{ExternEntry: &p4.ExternEntry{Entry: &anypb.Any{}}}}), codes.Unimplemented},
	}
}

func TestConformanceOfEveryValidationRule(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	for _, tc := range conformanceCases() {
		t.Run(tc.name, func(t *testing.T) {
			ct.commit()
			if len(tc.setup) > 0 {
				if err := ct.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, tc.setup...); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			got := codesOf(t, ct.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, tc.update), 1)[0]
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBatchErrorsAreReportedPerUpdateInOrder checks §12.3: a CONTINUE_ON_ERROR batch applies every valid
// update and reports one p4.v1.Error per update, in order.
func TestBatchErrorsAreReportedPerUpdateInOrder(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	got := ct.write(ins(exactEntry(1, 1)), ins(exactEntry(1, 2)), ins(exactEntry(2, 1)), mod(exactEntry(3, 1)), ins(te(0x0200ffff, 0, setPort, mac5)))
	want := []codes.Code{codes.OK, codes.AlreadyExists, codes.OK, codes.NotFound, codes.NotFound}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("update %d: %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
	if n := len(h.mustRead(entTE(&p4.TableEntry{TableId: tExact}))); n != 2 {
		t.Fatalf("%d entries installed, want 2", n)
	}
}

func TestAtomicBatchesApplyAllOrNothing(t *testing.T) {
	for _, atom := range []p4.WriteRequest_Atomicity{p4.WriteRequest_ROLLBACK_ON_ERROR, p4.WriteRequest_DATAPLANE_ATOMIC} {
		t.Run(atom.String(), func(t *testing.T) {
			h := newHarness(t)
			ct := h.primary(1)
			ct.commit()
			ct.mustWrite(ins(member(pPlain, 1, &p4.Action{ActionId: aDrop})), mod(counterEntry(cPortPkts, idx(1), 5)))
			err := ct.writeAtomic(atom, ins(exactEntry(1, 1)), mod(counterEntry(cPortPkts, idx(1), 9)), del(member(pPlain, 1, nil)), ins(exactEntry(1, 1)))
			got := codesOf(t, err, 4)
			want := []codes.Code{codes.Aborted, codes.Aborted, codes.Aborted, codes.AlreadyExists}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("update %d: %v, want %v", i, got[i], want[i])
				}
			}
			if n := len(h.mustRead(entTE(&p4.TableEntry{TableId: tExact}))); n != 0 {
				t.Fatalf("failed batch left %d entries", n)
			}
			if n := len(h.mustRead(member(pPlain, 0, nil))); n != 1 {
				t.Fatalf("failed batch deleted a member")
			}
			c := h.mustRead(counterEntry(cPortPkts, idx(1), 0))
			if c[0].GetCounterEntry().GetData().GetPacketCount() != 5 {
				t.Fatalf("failed batch changed a counter: %v", c[0])
			}
			if err := ct.writeAtomic(atom, ins(exactEntry(1, 1)), ins(exactEntry(2, 1))); err != nil {
				t.Fatal(err)
			}
			if n := len(h.mustRead(entTE(&p4.TableEntry{TableId: tExact}))); n != 2 {
				t.Fatalf("%d entries after a good batch", n)
			}
		})
	}
}

func TestWriteRPCLevelErrors(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	cases := []struct {
		name string
		req  *p4.WriteRequest
		want codes.Code
	}{
		{"before a pipeline config", &p4.WriteRequest{DeviceId: deviceID, ElectionId: eid(1), Updates: []*p4.Update{ins(exactEntry(1, 1))}}, codes.FailedPrecondition},
		{"unknown device", &p4.WriteRequest{DeviceId: 9, ElectionId: eid(1)}, codes.NotFound},
		{"not the primary's election id", &p4.WriteRequest{DeviceId: deviceID, ElectionId: eid(2)}, codes.PermissionDenied},
		{"no election id", &p4.WriteRequest{DeviceId: deviceID}, codes.PermissionDenied},
		{"unknown role", &p4.WriteRequest{DeviceId: deviceID, Role: "ghost", ElectionId: eid(1)}, codes.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.c.Write(ctx(t), tc.req); codeOf(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	ct.commit()
	if _, err := h.c.Write(ctx(t), &p4.WriteRequest{DeviceId: deviceID, ElectionId: eid(1), Atomicity: 7}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("unknown atomicity: %v", err)
	}
	if _, err := h.c.Write(ctx(t), &p4.WriteRequest{DeviceId: deviceID, ElectionId: eid(1)}); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

// TestAHugeFailingBatchStillReportsEveryCode: 100k failing updates fit the status trailer (messages
// are kept for the first failures only) and every update still has its code.
func TestAHugeFailingBatchStillReportsEveryCode(t *testing.T) {
	if testing.Short() {
		t.Skip("100k updates")
	}
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	const n = 100000
	ups := make([]*p4.Update, n)
	for i := range ups {
		ups[i] = mod(routeEntry(i)) // none exists: NOT_FOUND
	}
	ups[7] = ins(routeEntry(7))
	err := ct.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, ups...)
	got := codesOf(t, err, n)
	for i, c := range got {
		want := codes.NotFound
		if i == 7 {
			want = codes.OK
		}
		if c != want {
			t.Fatalf("update %d: %v, want %v", i, c, want)
		}
	}
}
