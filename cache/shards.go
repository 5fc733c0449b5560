package cache

import (
	"hash/maphash"
	"sync"
)

// The shared map of a type is split into shards, so that a write (a load,
// a sweep, the strong-entry bound) makes wait only the readers of its
// shard. Keys are kept typed: int64 keys (int keys are stored as int64)
// and string keys go to tables read with no lock (kshards, itab.go); every
// other key (composite keys, other integer types) goes to shards that are
// each a Go map under its own read-write lock (a map[any]), so that a
// lookup takes a lock nobody else is likely to hold (two goroutines meet
// on one shard once in nShards lookups).

const (
	shardBits = 6
	nShards   = 1 << shardBits
)

// shard is one part of a shared map, two cache lines of its own: CPUs
// that fetch lines in pairs (the adjacent-line prefetcher) would otherwise
// make readers of neighbouring shards fight over one pair.
type shard[K comparable] struct {
	mu sync.RWMutex
	m  map[K]slot // protected by mu; nil until the first store
	// peak is the most slots m held since it was made: a Go map keeps its
	// room after deletes, so a sweep that leaves far fewer makes it anew.
	peak int // protected by mu
	_    [128 - 24 - 8 - 8]byte
}

// shards are the shards of one key type.
type shards[K comparable] [nShards]shard[K]

var hashSeed = maphash.MakeSeed()

// intShard mixes the key's bits before taking the shard: a multiplication
// alone maps keys a fixed distance apart (two goroutines walking ids) to
// shards a fixed distance apart.
func intShard(k int64) int { return int(mix(k) >> (64 - shardBits)) }

func strShard(k string) int { return int(maphash.String(hashSeed, k) >> (64 - shardBits)) }

func anyShard(k any) int { return int(maphash.Comparable(hashSeed, k) >> (64 - shardBits)) }

// get returns the slot of k in shard i.
func (s *shards[K]) get(i int, k K) (slot, bool) {
	if s == nil {
		return slot{}, false
	}
	sh := &s[i]
	sh.mu.RLock()
	e, ok := sh.m[k]
	sh.mu.RUnlock()
	return e, ok
}

// op says what compute does with a slot.
type op uint8

const (
	opKeep   op = iota // leave the map as it is
	opStore            // store the returned slot
	opDelete           // delete the key
)

// computeIf calls f with the slot of k in shard i, under the shard's
// write lock, and does what it returns; with try, it does nothing when the
// lock is held.
func (s *shards[K]) computeIf(i int, k K, f func(cur slot, ok bool) (slot, op), try bool) {
	sh := &s[i]
	if !try {
		sh.mu.Lock()
	} else if !sh.mu.TryLock() {
		return
	}
	defer sh.mu.Unlock()
	sh.computeLocked(k, f)
}

// computeLocked is computeIf with the shard's write lock held.
func (sh *shard[K]) computeLocked(k K, f func(cur slot, ok bool) (slot, op)) {
	cur, ok := sh.m[k]
	n, o := f(cur, ok)
	switch o {
	case opStore:
		if sh.m == nil {
			sh.m = make(map[K]slot)
		}
		sh.m[k] = n
		sh.peak = max(sh.peak, len(sh.m))
	case opDelete:
		if ok {
			delete(sh.m, k)
		}
	}
}

func (s *shards[K]) len() int {
	if s == nil {
		return 0
	}
	n := 0
	for i := range s {
		sh := &s[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// clear forgets every slot; the shards' memory goes with them.
func (s *shards[K]) clear() {
	if s == nil {
		return
	}
	for i := range s {
		sh := &s[i]
		sh.mu.Lock()
		sh.m, sh.peak = nil, 0
		sh.mu.Unlock()
	}
}

// sweep deletes the slots for which dead reports true, and returns how many
// it deleted. It looks under the read lock and deletes under the write
// lock, so that readers wait only while a shard has something to delete.
func (s *shards[K]) sweep(dead func(slot) bool) int {
	if s == nil {
		return 0
	}
	n := 0
	var ks []K
	for i := range s {
		sh := &s[i]
		ks = ks[:0]
		sh.mu.RLock()
		for k, e := range sh.m {
			if dead(e) {
				ks = append(ks, k)
			}
		}
		sh.mu.RUnlock()
		if len(ks) == 0 {
			continue
		}
		sh.mu.Lock()
		for _, k := range ks {
			if e, ok := sh.m[k]; ok && dead(e) {
				delete(sh.m, k)
				n++
			}
		}
		sh.shrink()
		sh.mu.Unlock()
	}
	return n
}

// shrink makes the shard's map anew when it holds less than a quarter of
// its peak, so that the room of swept entries is given back. sh.mu is held.
func (sh *shard[K]) shrink() {
	switch n := len(sh.m); {
	case n == 0:
		sh.m, sh.peak = nil, 0
	case n < sh.peak/4:
		m := make(map[K]slot, n)
		for k, e := range sh.m {
			m[k] = e
		}
		sh.m, sh.peak = m, n
	}
}
