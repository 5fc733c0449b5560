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

// TestCountFlushAndMiss: the counts that the idmap package adds itself
// (flushes by reason, misses whose load found no row, bus traffic) show in
// Counters; a reason out of range is ignored.
func TestCountFlushAndMiss(t *testing.T) {
	d := newTestDB(t)
	d.CountFlush(0)
	d.CountFlush(3)
	d.CountFlush(3)
	d.CountFlush(-1)
	d.CountFlush(len(Counters{}.Flushes))
	d.CountMiss(true)
	d.CountMiss(false)
	d.CountMiss(false)
	d.Bus.Published.Add(2)
	d.Bus.Listening.Store(true)
	c := d.Counters()
	if c.Flushes != [8]uint64{0: 1, 3: 2} {
		t.Errorf("Flushes = %v; want 1 for reason 0 and 2 for reason 3", c.Flushes)
	}
	if c.Scoped.Misses != 1 || c.Shared.Misses != 2 {
		t.Errorf("misses: scoped %d, shared %d; want 1, 2", c.Scoped.Misses, c.Shared.Misses)
	}
	if c.Published != 2 || !c.Listening {
		t.Errorf("bus: published %d, listening %v; want 2, true", c.Published, c.Listening)
	}
}
