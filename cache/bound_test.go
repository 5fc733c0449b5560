package cache

import (
	"runtime"
	"testing"
)

// The strong-entry bound holds, and entries found by lookups stay longer
// than those no lookup found: by the general lookup and by the typed hit
// path of int64 keys (LookupSharedIntPtr, on a type of the test's own,
// whose first database is the test's).
func TestMaxStrongKeepsRecentlyFound(t *testing.T) {
	lookups := map[string]func(d *DB, typ *Type, k int64) State{
		"Lookup": func(d *DB, typ *Type, k int64) State { _, st := d.Shared().Lookup(typ, k); return st },
		"LookupSharedIntPtr": func(d *DB, typ *Type, k int64) State {
			_, st := d.LookupSharedIntPtr(typ, k)
			return st
		},
	}
	for name, lookup := range lookups {
		t.Run(name, func(t *testing.T) {
			d := newTestDB(t)
			typ := &Type{Name: "bound strong", Table: "users", Strong: true}
			d.SetMaxStrong(100)
			m := d.Shared()
			for k := range int64(100) {
				_, l := load(k, d.Now())
				m.Put(typ, l, nil)
			}
			if d.firstMap(typ) == nil {
				t.Fatal("the typed hit path is not reached")
			}
			for k := range int64(50) { // found: keys 0–49
				if st := lookup(d, typ, k); st != Fresh {
					t.Fatalf("key %d: %v before the bound was reached", k, st)
				}
			}
			for k := int64(100); k < 150; k++ {
				_, l := load(k, d.Now())
				m.Put(typ, l, nil)
			}
			if n := d.SharedLen(typ); n != 100 {
				t.Fatalf("%d strong entries; want the bound, 100", n)
			}
			for k := range int64(150) {
				st := lookup(d, typ, k)
				want := k < 50 || k >= 100
				if (st == Fresh) != want {
					t.Errorf("key %d: %v; want kept=%v (found keys and the newest stay)", k, st, want)
				}
			}
			if c := d.Counters(); c.Evicted != 50 {
				t.Errorf("Evicted = %d; want 50", c.Evicted)
			}
		})
	}
	// Weak entries are not bounded by it.
	d := newTestDB(t)
	d.SetMaxStrong(100)
	var held []*obj
	for k := range int64(300) {
		o, l := load(k, d.Now())
		d.Shared().Put(userType, l, nil)
		held = append(held, o)
	}
	if n := d.SharedLen(userType); n != 300 {
		t.Errorf("%d weak entries; want 300, all (the bound is of strong entries)", n)
	}
	runtime.KeepAlive(held)
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
