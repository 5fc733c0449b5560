package cache

import (
	"sync/atomic"
	_ "unsafe" // go:linkname
)

// counter is a counter that goroutines on several cores can add to without
// fighting over one cache line, and a hit can add to without a locked
// instruction: each add goes to the stripe of the P (the runtime's
// processor) that runs the adding goroutine, pinned to it for the add.
//
// While a goroutine is pinned (procPin, as sync.Pool pins) nothing else
// runs on its P, and Ps move between threads only through the scheduler's
// synchronisation: a stripe has one writer at a time, each ordered after
// the last, so a plain increment loses no add (addTo, counter_norace.go).
// A locked add cost 40% of a Get hit (a full barrier on amd64, the
// measurement in BENCHMARKS.md). The race detector does not know that
// pinning serialises the writers: race builds add atomically
// (counter_race.go). Ps numbered past the stripes (GOMAXPROCS > 32) add
// atomically to a word of their own. load reads each word atomically: a
// word-sized read sees some value a write stored (the Go memory model), so
// a load taken while hits go on counts each hit before it or not at all.
//
// A stripe is two cache lines (CPUs that fetch lines in pairs would
// otherwise couple neighbours). The stripe was once picked by a hash of
// the goroutine's stack address: two goroutines met on one stripe for
// whole runs (their stacks come back from the same caches), and two
// goroutines' Get hits then scaled 1.0× instead of ~1.5×.
type counter struct {
	// head keeps the stripes off the counter's first line, which every
	// add reads (the compiler's nil check of c): were stripe 0 there, its
	// writer and every other P's adds would pass that line between their
	// cores (two goroutines' hits scaled 0.9× instead of 1.5×).
	_       [64]byte
	stripes [counterStripes]struct {
		n uint64 // written by the pinned P's goroutine (addTo); read atomically
		_ [120]byte
	}
	shared atomic.Uint64 // adds of Ps past the stripes
}

const counterStripes = 32 // 4 KiB a counter

// add adds n on the stripe of the calling goroutine's P.
func (c *counter) add(n uint64) {
	if n != 0 {
		c.addOn(uint(procPin()), n)
		procUnpin()
	}
}

// addOn adds n on stripe p, which the caller is pinned to (procPin): a hit
// path pins and unpins itself around it, a call fewer than add (which the
// compiler does not inline).
func (c *counter) addOn(p uint, n uint64) {
	if p < counterStripes {
		addTo(&c.stripes[p].n, n)
	} else {
		c.shared.Add(n)
	}
}

// pid returns the number of the P running the calling goroutine, as
// sync.Pool finds it. The goroutine may move to another P right after:
// the number is a hint against contention (a scope's read-lock stripes).
func pid() uint {
	p := procPin()
	procUnpin()
	return uint(p)
}

// procPin and procUnpin are the runtime's; it keeps them for packages
// that link to them.
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

func (c *counter) load() uint64 {
	n := c.shared.Load()
	for i := range c.stripes {
		n += atomic.LoadUint64(&c.stripes[i].n)
	}
	return n
}

// mapCounters count what happened in one kind of map of a database.
type mapCounters struct {
	hits, misses, refreshes counter
}

func (m *mapCounters) snapshot() Counts {
	return Counts{Hits: m.hits.load(), Misses: m.misses.load(), Refreshes: m.refreshes.load()}
}

// Counts are a map's hit, miss and refresh counts.
type Counts struct{ Hits, Misses, Refreshes uint64 }

// dbStats are a database's counters.
type dbStats struct {
	shared, scoped mapCounters
	scopeEntries   atomic.Int64

	expiredKeys, expiredTables, expiredAll, expiredRemote, expiredAge atomic.Uint64

	flushes      [8]atomic.Uint64 // by reason (signals.Reason)
	weakReleased atomic.Uint64
	evicted      atomic.Uint64
}

// BusCounters count a database's traffic on its bus; the package that runs
// the bus adds to them.
type BusCounters struct {
	Published, Received, Gaps, Errors atomic.Uint64
	Listening                         atomic.Bool
}

// Counters is a snapshot of a database's counters.
type Counters struct {
	SharedEntries, ScopeEntries int64
	Shared, Scoped              Counts

	ExpiredKeys, ExpiredTables, ExpiredAll, ExpiredRemote, ExpiredAge uint64

	Flushes             [8]uint64 // by reason (signals.Reason)
	WeakReleased        uint64
	Evicted             uint64
	Published, Received uint64
	Gaps, PublishErrors uint64
	Listening           bool
}

// Counters returns a snapshot of d's counters. Counting the shared maps'
// entries visits their shards, not their entries.
func (d *DB) Counters() Counters {
	s := &d.stats
	c := Counters{
		ScopeEntries:  s.scopeEntries.Load(),
		Shared:        s.shared.snapshot(),
		Scoped:        s.scoped.snapshot(),
		ExpiredKeys:   s.expiredKeys.Load(),
		ExpiredTables: s.expiredTables.Load(),
		ExpiredAll:    s.expiredAll.Load(),
		ExpiredRemote: s.expiredRemote.Load(),
		ExpiredAge:    s.expiredAge.Load(),
		WeakReleased:  s.weakReleased.Load(),
		Evicted:       s.evicted.Load(),
		Published:     d.Bus.Published.Load(),
		Received:      d.Bus.Received.Load(),
		Gaps:          d.Bus.Gaps.Load(),
		PublishErrors: d.Bus.Errors.Load(),
		Listening:     d.Bus.Listening.Load(),
	}
	for i := range s.flushes {
		c.Flushes[i] = s.flushes[i].Load()
	}
	d.shared.Range(func(_, v any) bool {
		c.SharedEntries += int64(v.(*sharedMap).len())
		return true
	})
	return c
}

// CountFlush counts a flush of d for reason (a signals.Reason).
func (d *DB) CountFlush(reason int) {
	if reason >= 0 && reason < len(d.stats.flushes) {
		d.stats.flushes[reason].Add(1)
	}
}

// CountMiss counts a lookup that found nothing and whose load found no row
// either, in a scope's map or in the shared map.
func (d *DB) CountMiss(scoped bool) {
	if scoped {
		d.stats.scoped.misses.add(1)
	} else {
		d.stats.shared.misses.add(1)
	}
}
