package cache

import "testing"

func TestCounters(t *testing.T) {
	d := newTestDB(t)
	m := d.Shared()
	s := NewScope()
	for k := range int64(4) {
		_, l := load(k, d.Now())
		m.Put(strongType, l, nil)
		_, l = load(k, d.Now())
		s.In(d).Put(strongType, l, nil)
	}
	d.LookupShared(strongType, int64(1))
	s.Lookup(d, strongType, int64(1))
	_, l := load(1, d.Now())
	m.Put(strongType, l, nil) // kept: a hit
	d.ExpireKeys("strong_things", int64(2), int64(3))
	_, l = load(2, d.Now())
	m.Put(strongType, l, nil) // a refresh
	d.ExpireTable("strong_things")
	d.ExpireAll()
	d.ExpireRemote("strong_things", []any{int64(1)})
	c := d.Counters()
	want := Counters{
		SharedEntries: 4, ScopeEntries: 4,
		Shared:      Counts{Hits: 2, Misses: 4, Refreshes: 1},
		Scoped:      Counts{Hits: 1, Misses: 4},
		ExpiredKeys: 2, ExpiredTables: 1, ExpiredAll: 1, ExpiredRemote: 1,
	}
	if c != want {
		t.Errorf("counters:\n got %+v\nwant %+v", c, want)
	}
	s.End()
	if c := d.Counters(); c.ScopeEntries != 0 {
		t.Errorf("ScopeEntries = %d after the scope ended", c.ScopeEntries)
	}
}
