package cache

import (
	"runtime"
	"testing"
)

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
