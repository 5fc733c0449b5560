package cache

import (
	"runtime"
	"sync"
	"testing"
	"unsafe"
	"weak"
)

type obj struct {
	id   int64
	name string
	pad  [4]int64
}

func newTestDB(t testing.TB) *DB {
	t.Helper()
	return NewDB(t.Name())
}

var userType = &Type{Name: "obj", Table: "users"}

func load(key int64, epoch uint64) (*obj, *Load) {
	o := &obj{id: key}
	return o, &Load{Key: key, Obj: o, Epoch: epoch}
}

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

// Expiry by key, table and database; a load that began before a write
// finished is never fresh.
func TestExpiry(t *testing.T) {
	d := newTestDB(t)
	other := &Type{Name: "other", Table: "USERS"} // same table, another Go type
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		keep := []*obj{}
		put := func(typ *Type, k int64, epoch uint64) {
			o, l := load(k, epoch)
			keep = append(keep, o)
			m.Put(typ, l, func(dst, src any) { *dst.(*obj) = *src.(*obj) })
		}
		state := func(typ *Type, k int64) State { _, st := m.Lookup(typ, k); return st }
		put(userType, 1, d.Now())
		put(userType, 2, d.Now())
		put(other, 1, d.Now())
		d.ExpireKeys("users", int64(1))
		if state(userType, 1) != Expired || state(other, 1) != Expired || state(userType, 2) != Fresh {
			t.Errorf("%T: key expiry: got %v %v %v", m, state(userType, 1), state(other, 1), state(userType, 2))
		}
		// The race: a query begins, a write finishes, the rows arrive.
		began := d.Now()
		d.ExpireKeys("users", int64(3))
		put(userType, 3, began)
		if state(userType, 3) != Expired {
			t.Errorf("%T: a row read before a write finished is fresh", m)
		}
		put(userType, 4, d.Now())
		d.ExpireTable("users")
		if state(userType, 4) != Expired || state(other, 1) != Expired {
			t.Errorf("%T: table expiry missed an entry", m)
		}
		put(userType, 5, d.Now())
		d.ExpireAll()
		if state(userType, 5) != Expired {
			t.Errorf("%T: database expiry missed an entry", m)
		}
		// Reloading after expiry makes the entry fresh again.
		put(userType, 5, d.Now())
		if state(userType, 5) != Fresh {
			t.Errorf("%T: reload did not refresh", m)
		}
		runtime.KeepAlive(keep)
	}
}

// Written keys stay bounded: past the limit they collapse into a
// table-wide expiry, which still covers every key.
func TestKeyRecordsBounded(t *testing.T) {
	d := newTestDB(t)
	d.keyLimit = 100
	m := NewScope().In(d)
	o, l := load(1, d.Now())
	m.Put(userType, l, nil)
	for k := range int64(1000) {
		d.ExpireKeys("users", k+1000)
	}
	keys, collapses := d.Table("users").KeyStats()
	if keys > 100 || collapses == 0 {
		t.Errorf("got %d keys, %d collapses; want ≤ 100 keys and some collapses", keys, collapses)
	}
	if _, st := m.Lookup(userType, int64(1)); st != Expired {
		t.Error("a collapse lost an expiry") // key 1 was loaded before the writes: collapsing widens to it
	}
	runtime.KeepAlive(o)
}

// The memory that records written keys stays bounded however many keys are
// written: measured with runtime.MemStats over a million writes.
func TestKeyRecordsMemory(t *testing.T) {
	d := newTestDB(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for k := range int64(1_000_000) {
		d.ExpireKeys("big", k)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	keys, collapses := d.Table("big").KeyStats()
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("1,000,000 written keys: %d remembered, %d collapses, heap grew %d KiB", keys, collapses, grown/1024)
	if keys > DefaultKeyLimit {
		t.Errorf("%d keys remembered; want at most %d", keys, DefaultKeyLimit)
	}
	if grown > 4<<20 {
		t.Errorf("heap grew %d bytes; want a bounded record", grown)
	}
}

func TestScopeRefreshInPlace(t *testing.T) {
	d := newTestDB(t)
	m := NewScope().In(d)
	o, l := load(1, d.Now())
	o.name = "old"
	m.Put(userType, l, nil)
	d.ExpireAll()
	n, l2 := load(1, d.Now())
	n.name = "new"
	got := m.Put(userType, l2, func(dst, src any) { dst.(*obj).name = src.(*obj).name })
	if got != o || o.name != "new" {
		t.Errorf("scope refresh: got %p name %q; want the same object, renamed", got, o.name)
	}
	if _, st := m.Lookup(userType, int64(1)); st != Fresh {
		t.Error("refreshed entry is not fresh")
	}
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

func TestPartialNotServed(t *testing.T) {
	d := newTestDB(t)
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		o, l := load(1, d.Now())
		l.Partial = true
		m.Put(userType, l, nil)
		if _, st := m.Lookup(userType, int64(1)); st != Partial {
			t.Errorf("%T: partial entry state %v", m, st)
		}
		f, l2 := load(1, d.Now())
		got := m.Put(userType, l2, func(dst, src any) {})
		if _, st := m.Lookup(userType, int64(1)); st != Fresh {
			t.Errorf("%T: a complete row did not complete the entry: %v", m, st)
		}
		runtime.KeepAlive(o)
		runtime.KeepAlive(f)
		_ = got
	}
}

func TestScopeEnd(t *testing.T) {
	d := newTestDB(t)
	s := NewScope()
	o, l := load(1, d.Now())
	s.In(d).Put(userType, l, nil)
	s.End()
	if s.Len() != 0 {
		t.Error("End left objects")
	}
	o2, l2 := load(2, d.Now())
	s.In(d).Put(userType, l2, nil)
	if s.Len() != 0 {
		t.Error("an ended scope stored an object")
	}
	runtime.KeepAlive(o)
	runtime.KeepAlive(o2)
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

func TestConcurrentUse(t *testing.T) {
	d := newTestDB(t)
	s := NewScope()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keep := []*obj{}
			for i := range 500 {
				k := int64(i % 50)
				var m Map = d.Shared()
				if g%2 == 0 {
					m = s.In(d)
				}
				o, l := load(k, d.Now())
				keep = append(keep, o)
				p := m.Put(userType, l, func(dst, src any) {})
				if q, _ := m.Lookup(userType, k); q != p && q != nil {
					// another goroutine may have refreshed it in between
					_ = q
				}
				if i%97 == 0 {
					d.ExpireKeys("users", k)
				}
				if i%211 == 0 {
					d.FlushShared(nil)
					s.Flush(d, nil)
				}
			}
			runtime.KeepAlive(keep)
		}()
	}
	wg.Wait()
}

// BenchmarkWeakEntry measures what each way of removing dead weak entries
// costs on the cold path: weak.Make alone (sweeping, as the package does)
// against weak.Make plus a runtime.AddCleanup per object.
func BenchmarkWeakEntry(b *testing.B) {
	b.Run("sweep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o := &obj{}
			_ = weak.Make((*byte)(unsafe.Pointer(o)))
		}
	})
	b.Run("cleanup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o := &obj{}
			_ = weak.Make((*byte)(unsafe.Pointer(o)))
			runtime.AddCleanup(o, func(int64) {}, 0)
		}
	})
}

func BenchmarkSharedPutCold(b *testing.B) {
	d := NewDB(b.Name())
	m := d.Shared()
	keep := make([]*obj, 0, 1<<20)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		o, l := load(i, d.Now())
		i++
		m.Put(userType, l, nil)
		if len(keep) < cap(keep) {
			keep = append(keep, o)
		}
	}
}

func BenchmarkLookupHit(b *testing.B) {
	d := NewDB(b.Name())
	o, l := load(1, d.Now())
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		m.Put(userType, l, nil)
		b.Run(map[bool]string{true: "scope", false: "shared"}[m.Scoped()], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, st := m.Lookup(userType, int64(1)); st != Fresh {
					b.Fatal("miss")
				}
			}
		})
	}
	runtime.KeepAlive(o)
}
