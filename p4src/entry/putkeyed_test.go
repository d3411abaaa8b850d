package entry

import "testing"

func TestPutKeyedStoresLikePutAndValidates(t *testing.T) {
	var a, b Set
	e := Table("t", 0, Act("a", P("p", Uint(1))), Exact("f", Uint(7)), Exact("e", Uint(1)))
	if _, err := a.Put(e); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutKeyed(e.Key(), e); err != nil {
		t.Fatal(err)
	}
	if !a.Equal(&b) {
		t.Fatalf("PutKeyed stored %s, Put %s", b.String(), a.String())
	}
	// A non-canonical entry (match fields not sorted) is canonicalised and keyed again.
	raw := Entry{Kind: KindTable, Table: "t", Action: Act("a"), Match: []Match{Exact("f", Uint(8)), Exact("e", Uint(1))}}
	if _, err := b.PutKeyed(raw.Key(), raw); err != nil {
		t.Fatal(err)
	}
	if !b.Has(raw.Canonical().Key()) || b.Has(raw.Key()) {
		t.Error("a non-canonical entry was stored under the caller's key")
	}
	// Invalid entries are refused.
	if _, err := b.PutKeyed("x", Entry{Kind: KindTable}); err == nil {
		t.Error("an entry without a table was accepted")
	}
}
