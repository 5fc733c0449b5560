package cache

import (
	"runtime"
	"testing"
	"time"
)

var strongType = &Type{Name: "obj", Table: "strong_things", Strong: true}

// The strong-entry bound holds, and entries found by lookups stay longer
// than those no lookup found.
func TestMaxStrongKeepsRecentlyFound(t *testing.T) {
	d := newTestDB(t)
	d.SetMaxStrong(100)
	m := d.Shared()
	for k := range int64(100) {
		_, l := load(k, d.Now())
		m.Put(strongType, l, nil)
	}
	for k := range int64(50) { // found: keys 0–49
		if _, st := m.Lookup(strongType, k); st != Fresh {
			t.Fatalf("key %d: %v before the bound was reached", k, st)
		}
	}
	for k := int64(100); k < 150; k++ {
		_, l := load(k, d.Now())
		m.Put(strongType, l, nil)
	}
	if n := d.SharedLen(strongType); n != 100 {
		t.Fatalf("%d strong entries; want the bound, 100", n)
	}
	for k := range int64(150) {
		_, st := m.Lookup(strongType, k)
		want := k < 50 || k >= 100
		if (st == Fresh) != want {
			t.Errorf("key %d: %v; want kept=%v (found keys and the newest stay)", k, st, want)
		}
	}
	if c := d.Counters(); c.Evicted != 50 {
		t.Errorf("Evicted = %d; want 50", c.Evicted)
	}
	// Weak entries are not bounded by it.
	for k := range int64(300) {
		o, l := load(k, d.Now())
		m.Put(userType, l, nil)
		runtime.KeepAlive(o)
	}
}

// Memory stays bounded however many strong entries are stored, with
// refreshes (replaced entries) in the mix.
func TestMaxStrongMemory(t *testing.T) {
	d := newTestDB(t)
	const bound = 10_000
	d.SetMaxStrong(bound)
	m := d.Shared()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for k := range int64(300_000) {
		_, l := load(k%100_000, d.Now())
		l.Refresh = k%7 == 0
		m.Put(strongType, l, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := d.SharedLen(strongType)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("300,000 strong puts over 100,000 keys, bound %d: %d entries held, heap grew %d KiB (%d B per entry held)",
		bound, n, grown/1024, grown/int64(max(n, 1)))
	if n > bound {
		t.Errorf("%d entries; want at most %d", n, bound)
	}
	if grown > 8<<20 {
		t.Errorf("heap grew %d bytes; want it bounded by the entries held", grown)
	}
}

func TestMaxAge(t *testing.T) {
	d := newTestDB(t)
	d.SetMaxAge(40 * time.Millisecond)
	m := d.Shared()
	o, l := load(1, d.Now())
	m.Put(strongType, l, nil)
	if _, st := m.Lookup(strongType, int64(1)); st != Fresh {
		t.Fatalf("a new entry is %v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, st := m.Lookup(strongType, int64(1)); st == Expired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry never expired by age")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := d.Counters(); c.ExpiredAge == 0 {
		t.Error("age expiries not counted")
	}
	// A new load is fresh again; scopes are not aged.
	_, l = load(1, d.Now())
	if p := m.Put(strongType, l, nil); p == any(o) {
		t.Error("the aged object was kept")
	}
	if _, st := m.Lookup(strongType, int64(1)); st != Fresh {
		t.Errorf("reloaded entry is %v", st)
	}
	s := NewScope()
	_, l = load(2, d.Now())
	s.In(d).Put(strongType, l, nil)
	time.Sleep(100 * time.Millisecond)
	if _, st := s.In(d).Lookup(strongType, int64(2)); st != Fresh {
		t.Errorf("scope entry is %v after the max age; scopes are not aged", st)
	}
}

func TestPauseResume(t *testing.T) {
	d := newTestDB(t)
	m := d.Shared()
	_, l := load(1, d.Now())
	m.Put(strongType, l, nil)
	d.Pause()
	_, l2 := load(2, d.Now())
	m.Put(strongType, l2, nil)
	for k := range int64(3) {
		if _, st := m.Lookup(strongType, k); st == Fresh {
			t.Errorf("key %d fresh while paused", k)
		}
	}
	d.Resume()
	if _, st := m.Lookup(strongType, int64(2)); st != Absent {
		t.Errorf("a load during the pause is %v after it; want Absent (not stored)", st)
	}
	if _, st := m.Lookup(strongType, int64(1)); st != Expired {
		t.Errorf("a load before the pause is %v after it; want Expired", st)
	}
	_, l3 := load(3, d.Now())
	m.Put(strongType, l3, nil)
	if _, st := m.Lookup(strongType, int64(3)); st != Fresh {
		t.Errorf("a load after the pause is %v", st)
	}
}

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

// BenchmarkLookupHitStrong measures a strong entry's hit with and without
// the strong-entry bound (which marks entries as found).
func BenchmarkLookupHitStrong(b *testing.B) {
	for _, bounded := range []bool{false, true} {
		b.Run(map[bool]string{false: "unbounded", true: "bounded"}[bounded], func(b *testing.B) {
			d := NewDB(b.Name())
			if bounded {
				d.SetMaxStrong(1 << 20)
			}
			const n = 1024
			for k := range int64(n) {
				_, l := load(k, d.Now())
				d.Shared().Put(strongType, l, nil)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := int64(0)
				for pb.Next() {
					if _, st := d.LookupShared(strongType, k&(n-1)); st != Fresh {
						b.Fatal("miss")
					}
					k++
				}
			})
		})
	}
}

// BenchmarkScopePutAll100 is the map side of a cold Bind of 100 rows: a new
// scope takes 100 loads.
func BenchmarkScopePutAll100(b *testing.B) {
	d := NewDB(b.Name())
	objs := make([]obj, 100)
	loads := make([]Load, 100)
	b.ReportAllocs()
	for b.Loop() {
		for i := range loads {
			loads[i] = Load{Key: int64(1000 + i), Obj: &objs[i], Epoch: d.Now()}
		}
		s := NewScope()
		s.In(d).PutAll(userType, loads, nil)
		if _, st := s.Lookup(d, userType, int64(1050)); st != Fresh {
			b.Fatal(st)
		}
	}
}
