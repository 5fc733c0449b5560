package cache

import (
	"runtime"
	"sync"
)

// Weak entries are removed by sweeping, not by a cleanup per object: a
// runtime.AddCleanup costs about as much again as the weak.Make that every
// weak entry already pays (see BenchmarkWeakEntry), while a sweep visits each
// entry once per garbage collection. A sentinel object with a cleanup tells
// the sweeper that a collection has run; the sweeper then removes the entries
// whose objects are gone and arms a new sentinel.

var sweeper struct {
	mu   sync.Mutex   // protects maps
	maps []*sharedMap // shared maps that hold weak entries
	once sync.Once
	kick chan struct{}
}

func registerWeak(m *sharedMap) {
	sweeper.mu.Lock()
	sweeper.maps = append(sweeper.maps, m)
	sweeper.mu.Unlock()
	sweeper.once.Do(startSweeper)
}

func startSweeper() {
	sweeper.kick = make(chan struct{}, 1)
	go func() {
		for range sweeper.kick {
			sweepAll()
			armSentinel()
		}
	}()
	armSentinel()
}

func armSentinel() {
	s := new([16]byte) // not tiny-allocated: its own block, freed by the next GC
	runtime.AddCleanup(s, func(struct{}) {
		select {
		case sweeper.kick <- struct{}{}:
		default:
		}
	}, struct{}{})
}

func sweepAll() {
	sweeper.mu.Lock()
	maps := append([]*sharedMap(nil), sweeper.maps...)
	sweeper.mu.Unlock()
	for _, m := range maps {
		m.sweep()
	}
}

func (m *sharedMap) sweep() {
	dead := func(e slot) bool { return e.object(false) == nil }
	n := m.ints.sweep(dead) + m.strs.Load().sweep(dead) + m.anys.Load().sweep(dead)
	m.db.stats.weakReleased.Add(uint64(n))
}

// Sweep removes, now, the weak entries of d whose objects have been
// collected, and returns how many weak entries of d have been removed in
// all (Counters.WeakReleased). Sweeps also run by themselves after each
// garbage collection.
func (d *DB) Sweep() (released uint64) {
	d.shared.Range(func(_, v any) bool {
		if m := v.(*sharedMap); !m.strong {
			m.sweep()
		}
		return true
	})
	return d.stats.weakReleased.Load()
}
