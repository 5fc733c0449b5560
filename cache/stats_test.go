package cache

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

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

// TestCounterExact: goroutines on every P add to one counter while the
// number of Ps changes under them (from 1 to past the stripes, and back)
// and readers load it: no add is lost, and no load goes back or past the
// adds made.
func TestCounterExact(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var c counter
	const goroutines, adds = 8, 20000
	var wg, readers sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			last := uint64(0)
			for {
				select {
				case <-done:
					return
				default:
				}
				n := c.load()
				if n < last || n > goroutines*adds*3 {
					t.Errorf("load %d after %d (at most %d added)", n, last, goroutines*adds*3)
					return
				}
				last = n
			}
		}()
	}
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range adds {
				c.add(1)
				c.add(2)
				if i%1000 == 0 && g == 0 {
					runtime.GOMAXPROCS(1 + i/1000%(counterStripes+8)) // 1 to 40 Ps
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if n := c.load(); n != goroutines*adds*3 {
		t.Fatalf("counted %d; want %d", n, goroutines*adds*3)
	}
}

// TestCounterAddNotTorn: a load that runs while a stripe's add carries
// from its low 32 bits into its high ones sees the word before or after
// the add, never half of it. (A plain 64-bit add on a 32-bit platform is
// two stores: the load between them sees the low word wrapped to 0 and
// the high one not yet carried, a count 2^32 back.)
func TestCounterAddNotTorn(t *testing.T) {
	const before = 1<<32 - 1
	var w uint64
	atomic.StoreUint64(&w, before)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			addTo(&w, 1)
			atomic.StoreUint64(&w, before)
		}
	}()
	defer func() { stop.Store(true); <-done }()
	for i := range 500_000 {
		if v := atomic.LoadUint64(&w); v != before && v != before+1 {
			t.Fatalf("load %d saw %#x: neither %#x nor %#x", i, v, uint64(before), uint64(before+1))
		}
	}
}

// TestCounterLayout: no stripe of a counter is on its first cache line,
// which every add reads (the nil check of the counter), and stripes are
// two lines apart: a stripe there made two goroutines' hits pass the line
// between their cores (BenchmarkPairedParallel: 0.9× instead of 1.5×).
func TestCounterLayout(t *testing.T) {
	var c counter
	if off := unsafe.Offsetof(c.stripes); off < 64 {
		t.Errorf("stripes at offset %d of a counter; want ≥ 64", off)
	}
	if size := unsafe.Sizeof(c.stripes[0]); size < 128 {
		t.Errorf("a stripe is %d bytes; want ≥ 128", size)
	}
}
