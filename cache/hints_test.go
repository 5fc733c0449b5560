package cache

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestPrefetchAnyAddress: prefetch takes any address without faulting —
// none, unmapped, kernel space, the address of a collected object — as
// the hints rely on (hints.go).
func TestPrefetchAnyAddress(t *testing.T) {
	gone := uintptr(unsafe.Pointer(&obj{id: 1}))
	runtime.GC()
	for _, a := range []uintptr{0, 1, 4096, ^uintptr(0)>>1 + 1, ^uintptr(0), ^uintptr(0) - 63, gone} {
		prefetch(a)
	}
}

// checkHints checks every table of m's int shards: a weak table of hintMin
// slots or more keeps one hint per slot, the address of the slot's object
// (0 for a slot with none); any other table keeps none. It returns how
// many tables kept hints.
func checkHints(t *testing.T, m *sharedMap) (hinted int) {
	t.Helper()
	for s := range m.ints {
		tab := m.ints[s].tab.Load()
		if tab == nil {
			continue
		}
		if tab.weak() != !m.strong {
			t.Fatalf("shard %d: table weak = %v in a map with strong = %v", s, tab.weak(), m.strong)
		}
		if !tab.weak() {
			continue
		}
		hints := *tab.hints
		if want := len(tab.slots) >= hintMin; (len(hints) > 0) != want {
			t.Fatalf("shard %d: %d slots: %d hints; want hints: %v", s, len(tab.slots), len(hints), want)
		}
		if len(hints) == 0 {
			continue
		}
		hinted++
		if len(hints) != len(tab.slots) {
			t.Fatalf("shard %d: %d hints for %d slots", s, len(hints), len(tab.slots))
		}
		for i := range tab.slots {
			if got, want := hints[i], weakAddr(tab.slots[i].ref); got != want {
				t.Fatalf("shard %d slot %d (key %d): hint %#x; want %#x, its object", s, i, tab.slots[i].key, got, want)
			}
		}
	}
	return hinted
}

// TestWeakHints: a weak shared map's large int64 tables keep the address of
// each slot's object through every way a slot is written — one Put at a
// time, a bulk load (reserved tables), growth, a refresh with a new
// object, a removal, a flush and a load after it — and a strong map's
// tables, and small ones, keep none.
func TestWeakHints(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 2 x 100,000 entries")
	}
	d := newTestDB(t)
	weakT := &Type{Name: "hinted", Table: "hinted"}
	strongT := &Type{Name: "hinted_strong", Table: "hinted_strong", Strong: true}
	const n = 100_000 // ~1,560 keys a shard: tables past hintMin
	var held []*obj   // the objects stay reachable, so no hint goes stale
	for i := range n / 2 {
		o, l := load(int64(i), d.Now())
		held = append(held, o)
		d.Shared().Put(weakT, l, nil)
		o2, l2 := load(int64(i), d.Now())
		held = append(held, o2)
		d.Shared().Put(strongT, l2, nil)
	}
	loads := make([]Load, 0, n/2)
	for i := n / 2; i < n; i++ {
		o, l := load(int64(i), d.Now())
		held = append(held, o)
		loads = append(loads, *l)
	}
	d.Shared().PutChunks(weakT, [][]Load{loads}, nil)
	wm, sm := d.sharedMap(weakT), d.sharedMap(strongT)
	if got := checkHints(t, wm); got == 0 {
		t.Fatal("no table of the weak map keeps hints")
	}
	if got := checkHints(t, sm); got != 0 {
		t.Fatalf("%d tables of the strong map keep hints", got)
	}

	// Growth rebuilds the hinted tables: they keep their slots' hints.
	more := make([]Load, 0, n)
	for i := int64(n); i < 2*n; i++ {
		o, l := load(i, d.Now())
		held = append(held, o)
		more = append(more, *l)
	}
	d.Shared().PutChunks(weakT, [][]Load{more}, nil)
	checkHints(t, wm)

	// A refresh stores a new object; a removal leaves none.
	d.ExpireAll()
	for i := range int64(1000) {
		o, l := load(i, d.Now())
		held = append(held, o)
		d.Shared().Put(weakT, l, nil)
	}
	for i := int64(1000); i < 2000; i++ {
		p, _ := d.LookupSharedIntPtr(weakT, i)
		d.Shared().Remove(weakT, i, weakT.box(p))
	}
	checkHints(t, wm)

	// A hit of a refreshed key finds its object (the prefetch is no part
	// of what it returns).
	for _, k := range []int64{0, 500, 999} {
		if p, st := d.LookupSharedIntPtr(weakT, k); st != Fresh || p == nil || (*obj)(p).id != k {
			t.Fatalf("key %d: %p %v; want its object, Fresh", k, p, st)
		}
	}

	// A flush empties the tables; the next load makes weak ones again.
	d.FlushShared(weakT)
	small := make([]Load, 0, 100)
	for i := range int64(100) {
		o, l := load(i, d.Now())
		held = append(held, o)
		small = append(small, *l)
	}
	d.Shared().PutChunks(weakT, [][]Load{small}, nil)
	if got := checkHints(t, wm); got != 0 {
		t.Fatalf("%d tables of 100 keys keep hints", got)
	}
	low := make([]Load, 0, n/2)
	for i := range int64(n / 2) {
		o, l := load(i, d.Now())
		held = append(held, o)
		low = append(low, *l)
	}
	d.Shared().PutChunks(weakT, [][]Load{low, loads}, nil)
	if got := checkHints(t, wm); got == 0 {
		t.Fatal("no table of the weak map keeps hints after a flush and a bulk load")
	}
	runtime.KeepAlive(held)
}
