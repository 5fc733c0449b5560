package cache

import (
	"runtime"
	"testing"
)

func TestSharedPutLookup(t *testing.T) {
	d := newTestDB(t)
	m := d.Shared()
	o, l := load(1, d.Now())
	if got := m.Put(userType, l, nil); got != any(o) {
		t.Fatal("first Put did not store its object")
	}
	o2, l2 := load(1, d.Now())
	if got := m.Put(userType, l2, nil); got != any(o) {
		t.Error("second Put of a fresh key replaced the object")
	}
	if p, st := m.Lookup(userType, int64(1)); p != o || st != Fresh {
		t.Errorf("Lookup: got %v %v; want the object, Fresh", p, st)
	}
	runtime.KeepAlive(o)
	runtime.KeepAlive(o2)
}

func TestSharedRefreshNewObject(t *testing.T) {
	d := newTestDB(t)
	m := d.Shared()
	o, l := load(1, d.Now())
	o.name = "old"
	m.Put(userType, l, nil)
	d.ExpireAll()
	n, l2 := load(1, d.Now())
	n.name = "new"
	got := m.Put(userType, l2, func(dst, src any) { t.Error("shared map wrote to a handed-out object") })
	if got != n || o.name != "old" {
		t.Error("shared refresh did not replace the object")
	}
	runtime.KeepAlive(o)
	runtime.KeepAlive(n)
}

// An entry's memory is released once its object is unreachable: measured
// over many entries with runtime.MemStats.
func TestWeakEntriesReleased(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "weakobj", Table: "w"}
	m := d.Shared()
	const n = 100_000
	var ms0, ms1, ms2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	objs := make([]*obj, n)
	for i := range objs {
		o, l := load(int64(i), d.Now())
		objs[i] = o
		m.Put(typ, l, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	if got := d.SharedLen(typ); got != n {
		t.Fatalf("got %d entries; want %d", got, n)
	}
	runtime.KeepAlive(objs) // live until here: the entries must all be there
	perEntry := (float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)) / n
	objs = nil
	for i := 0; i < 20 && d.SharedLen(typ) > 0; i++ {
		runtime.GC()
		d.Sweep()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms2)
	if got := d.SharedLen(typ); got != 0 {
		t.Errorf("%d entries left after their objects became unreachable", got)
	}
	left := (float64(ms2.HeapAlloc) - float64(ms0.HeapAlloc)) / n
	t.Logf("heap per live entry with its object: %.0f B; per entry after release: %.1f B", perEntry, left)
	if left > 16 {
		t.Errorf("%.1f bytes per entry still held after release", left)
	}
}

// Sweeps run by themselves after a garbage collection, with no call to Sweep.
func TestSweepAfterGC(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "autosweep", Table: "a"}
	func() {
		o, l := load(1, d.Now())
		d.Shared().Put(typ, l, nil)
		runtime.KeepAlive(o)
	}()
	before := d.Counters().WeakReleased
	for i := 0; i < 50 && d.SharedLen(typ) > 0; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	after := d.Counters().WeakReleased
	if d.SharedLen(typ) != 0 {
		t.Errorf("no automatic sweep removed the dead entry (weak entries released %d → %d)", before, after)
	}
}

// TestDBSweep: Sweep removes the weak entries of one database whose
// objects are gone, and reports its own count, not another database's.
func TestDBSweep(t *testing.T) {
	a, b := NewDB("sweep-a"), NewDB("sweep-b")
	typ := &Type{Name: "obj", Table: "sweep"}
	keep := &obj{id: 0}
	b.Shared().Put(typ, &Load{Key: int64(0), Obj: keep, Epoch: b.Now()}, nil)
	func() {
		for i := range 10 {
			_, l := load(int64(i+1), a.Now())
			a.Shared().Put(typ, l, nil)
		}
	}()
	released := uint64(0)
	for i := 0; i < 20 && released < 10; i++ {
		runtime.GC()
		released = a.Sweep()
	}
	if released != 10 || a.SharedLen(typ) != 0 {
		t.Errorf("Sweep: %d released, %d left; want 10, 0", released, a.SharedLen(typ))
	}
	if got := a.Counters().WeakReleased; got != released {
		t.Errorf("Counters().WeakReleased = %d; Sweep said %d", got, released)
	}
	if got := b.Sweep(); got != 0 || b.SharedLen(typ) != 1 {
		t.Errorf("the other database: %d released, %d left; want 0, 1", got, b.SharedLen(typ))
	}
	runtime.KeepAlive(keep)
}

// TestFlushShared: FlushShared forgets every type's entries or one type's;
// FlushSharedTable those of every type on a table, compared without regard
// to case.
func TestFlushShared(t *testing.T) {
	d := newTestDB(t)
	onUsers := &Type{Name: "obj2", Table: "Users"}
	elsewhere := &Type{Name: "obj3", Table: "other"}
	var keep []*obj
	fill := func() {
		for _, typ := range []*Type{userType, onUsers, elsewhere} {
			o, l := load(1, d.Now())
			keep = append(keep, o)
			d.Shared().Put(typ, l, nil)
		}
	}
	lens := func() [3]int {
		return [3]int{d.SharedLen(userType), d.SharedLen(onUsers), d.SharedLen(elsewhere)}
	}
	fill()
	d.FlushSharedTable("USERS")
	if got := lens(); got != [3]int{0, 0, 1} {
		t.Errorf("FlushSharedTable: %v entries left; want [0 0 1]", got)
	}
	fill()
	d.FlushShared(onUsers)
	if got := lens(); got != [3]int{1, 0, 1} {
		t.Errorf("FlushShared(type): %v entries left; want [1 0 1]", got)
	}
	d.FlushShared(nil)
	if got := lens(); got != [3]int{0, 0, 0} {
		t.Errorf("FlushShared(nil): %v entries left; want none", got)
	}
	runtime.KeepAlive(keep)
}

// TestPutAllWeakBatches: a PutAll of weak entries larger than a batch of
// weak pointers (made last first), mixing new keys, keys already fresh in
// the map and loads marked canonical, leaves each load's canonical object,
// stores one entry per new key, and the entries go once their objects do.
func TestPutAllWeakBatches(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "weakbatch", Table: "wb"}
	m := d.Shared()
	const n = 2*weakBatch + 77
	old := make(map[int64]*obj)
	for k := int64(0); k < n; k += 5 { // fresh before the load: kept
		o, l := load(k, d.Now())
		old[k] = o
		m.Put(typ, l, nil)
	}
	objs := make([]*obj, n)
	loads := make([]Load, n)
	for i := range loads {
		objs[i] = &obj{id: int64(i)}
		loads[i] = Load{Key: int64(i), Obj: objs[i], Epoch: d.Now()}
		if i%7 == 3 {
			loads[i].Canonical = true
		}
	}
	before := d.Counters().Shared
	m.PutAll(typ, loads, nil)
	after := d.Counters().Shared
	wantHits := uint64(0)
	for i, l := range loads {
		k := int64(i)
		want, inMap := any(objs[i]), any(objs[i])
		if o, ok := old[k]; ok {
			inMap = o
			if !l.Canonical {
				want = o
			}
		}
		if l.Canonical || old[k] != nil {
			wantHits++
		}
		if l.Obj != want {
			t.Fatalf("load %d: object %p; want %p", i, l.Obj, want)
		}
		if l.Canonical && old[k] == nil {
			continue // nothing stored for it
		}
		if p, st := d.LookupSharedInt(typ, k); st != Fresh || p != inMap {
			t.Fatalf("key %d: %p, %v; want %p, fresh", k, p, st, inMap)
		}
	}
	if got := after.Hits - before.Hits; got != wantHits {
		t.Errorf("PutAll counted %d hits; want %d", got, wantHits)
	}
	objs, old, loads = nil, nil, nil
	for i := 0; i < 20 && d.SharedLen(typ) > 0; i++ {
		runtime.GC()
		d.Sweep()
	}
	if got := d.SharedLen(typ); got != 0 {
		t.Errorf("%d entries left after their objects became unreachable", got)
	}
}
