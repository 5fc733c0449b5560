package cache

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// itab is a table of int64 keys that readers probe without a lock: open
// addressing with linear probing, every word read with an atomic load.
// Writers are serialised by the table's owner (a shard's mutex, a scope's
// locks); a reader takes no lock and writes nothing, so that a hit runs no
// locked instruction and two goroutines reading one table share its cache
// lines.
//
// The rules that make lock-free reads sound:
//
//   - A slot that holds a key holds that key for the life of the table: a
//     delete leaves the key with no object (a tombstone), which a later
//     store of the same key may fill again, but no other key takes the
//     slot. A reader that finds its key therefore never sees another key's
//     object in that slot, and an empty slot ends a probe.
//   - A slot's object and meta change together under a sequence number
//     (a seqlock in the low bits of the meta word): odd while a writer is
//     between its stores; a reader retries when the word changed while it
//     read the object. A slot's sequence never wraps in place (its values
//     would recur under a paused reader): the writer rebuilds the table
//     first (lastSeq).
//   - A table that grows or shrinks is built anew and published with one
//     atomic store; the old one is never written again, so a reader that
//     still probes it sees the state at the moment of the switch.
//
// A slot is 24 bytes: the key, the object (or weak pointer) and the meta
// word. Sizes are not powers of two: the index is the high word of the
// hash times the size, so that the load factor stays between minLoad and
// maxLoad (heap per entry 24/maxLoad to 24/minLoad bytes).
type itab struct {
	slots []islot
	used  int // slots that hold a key (live or tombstone); owner's lock
	live  int // slots that hold an object; owner's lock
}

type islot struct {
	key  atomic.Int64
	ref  unsafe.Pointer // atomic: the object, or a weak pointer's bits; nil: no object
	meta atomic.Uint64  // slot meta << seqBits | sequence; 0: never used
}

const (
	seqBits = 16
	seqMask = 1<<seqBits - 1
	// maxEpoch is the largest epoch a slot keeps: a larger one is stored
	// as maxEpoch, which makes the entry expire sooner, never later.
	maxEpoch = 1<<(64-seqBits-metaShift) - 1

	minCap = 4
	// maxLoad: a store that would make more slots used than this share of
	// the table rebuilds it with the live keys at about newLoad.
	maxLoadNum, maxLoadDen = 7, 8
	newLoadNum, newLoadDen = 5, 7
)

// mix is a 64-bit mixer (murmur3's finaliser): keys a fixed distance apart
// land far apart.
func mix(k int64) uint64 {
	x := uint64(k)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// home is the first slot of hash h (its top shardBits bits are the
// shard's, the rest place it in the table).
func (t *itab) home(h uint64) int {
	hi, _ := bits.Mul64(h<<shardBits, uint64(len(t.slots)))
	return int(hi)
}

func packMeta(meta uint64) uint64 {
	if meta>>metaShift > maxEpoch {
		meta = maxEpoch<<metaShift | meta&(1<<metaShift-1)
	}
	return meta << seqBits
}

// get returns the object and meta of key k (hash h) in t; ok is false when
// t holds no object under k. No lock.
func (t *itab) get(h uint64, k int64) (ref unsafe.Pointer, meta uint64, ok bool) {
	if t == nil {
		return nil, 0, false
	}
	s := t.slots
	n := len(s)
	i := t.home(h)
	for range n {
		sl := &s[i]
		m1 := sl.meta.Load()
		if m1 == 0 {
			return nil, 0, false
		}
		if sl.key.Load() == k {
			for spin := 0; ; spin++ {
				if m1&1 != 0 { // a writer is between its stores
					if spin > 16 {
						runtime.Gosched()
					}
					m1 = sl.meta.Load()
					continue
				}
				r := atomic.LoadPointer(&sl.ref)
				m2 := sl.meta.Load()
				if m1 == m2 {
					return r, m1 >> seqBits, r != nil
				}
				m1 = m2
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil, 0, false
}

// probe returns the index of k's slot in t (found), else of the empty
// slot that ends k's probe, where k goes if stored; -1 if t is nil.
// Owner's lock held.
func (t *itab) probe(h uint64, k int64) (i int, found bool) {
	if t == nil {
		return -1, false
	}
	s := t.slots
	n := len(s)
	i = t.home(h)
	for range n {
		sl := &s[i]
		if sl.meta.Load() == 0 {
			return i, false
		}
		if sl.key.Load() == k {
			return i, true
		}
		if i++; i == n {
			i = 0
		}
	}
	return -1, false // not reached: a table is never full
}

// find returns the index of k's slot in t, or -1. Owner's lock held.
func (t *itab) find(h uint64, k int64) int {
	if i, ok := t.probe(h, k); ok {
		return i
	}
	return -1
}

// lastSeq reports whether slot i's sequence is at its last even value: one
// more set would wrap it, and a reader paused between its two loads of the
// meta word could then see the same word twice around a write (the
// sequence's values recur) and pair one write's object with another's
// meta. A slot's sequence therefore never wraps in place: the writer
// rebuilds the table first (rebuild starts every sequence afresh), and the
// old table, which paused readers may still probe, is never written again.
func (t *itab) lastSeq(i int) bool { return t.slots[i].meta.Load()&seqMask >= seqMask-1 }

// set gives slot i the object ref and meta under the seqlock; slot i is not
// at its last sequence (lastSeq). Owner's lock held.
func (t *itab) set(i int, ref unsafe.Pointer, meta uint64) {
	sl := &t.slots[i]
	old := sl.meta.Load()
	seq := old & seqMask
	if seq&1 == 0 {
		seq++
	}
	sl.meta.Store(old&^seqMask | seq) // odd: readers wait
	if old := atomic.LoadPointer(&sl.ref); (old == nil) != (ref == nil) {
		if ref == nil {
			t.live--
		} else {
			t.live++
		}
	}
	atomic.StorePointer(&sl.ref, ref)
	seq++
	if seq > seqMask {
		panic("idmap/cache: itab: a slot's sequence wraps in place") // see lastSeq
	}
	sl.meta.Store(packMeta(meta) | seq)
}

// putItab stores k (hash h) with ref and meta in *p's table, growing it
// when needed, and publishes the new table if it made one. Owner's lock
// held.
func putItab(p *atomic.Pointer[itab], h uint64, k int64, ref unsafe.Pointer, meta uint64) {
	t := p.Load()
	i, found := t.probe(h, k)
	putAt(p, t, i, found, h, k, ref, meta)
}

// putAt is putItab after t.probe(h, k) returned i and found: a store of a
// new key probes the table once.
func putAt(p *atomic.Pointer[itab], t *itab, i int, found bool, h uint64, k int64, ref unsafe.Pointer, meta uint64) {
	if found && t.lastSeq(i) {
		t = t.rebuild(1)
		p.Store(t)
		i, found = t.probe(h, k) // a tombstone is not rebuilt: then k is new
	}
	if found {
		t.set(i, ref, meta)
		return
	}
	if ref == nil {
		return
	}
	if t == nil || i < 0 || (t.used+1)*maxLoadDen > len(t.slots)*maxLoadNum {
		t = t.rebuild(1)
		p.Store(t)
		i, _ = t.probe(h, k)
	}
	t.slots[i].key.Store(k)
	t.used++
	t.set(i, ref, meta)
}

// rebuild returns a new table holding t's live slots with room for extra
// more at about newLoad. Owner's lock held.
func (t *itab) rebuild(extra int) *itab {
	live := extra
	if t != nil {
		live += t.live
	}
	n := max(minCap, live*newLoadDen/newLoadNum+1)
	nt := &itab{slots: make([]islot, n)}
	if t == nil {
		return nt
	}
	for i := range t.slots {
		sl := &t.slots[i]
		r := atomic.LoadPointer(&sl.ref)
		if r == nil {
			continue
		}
		k := sl.key.Load()
		j := nt.home(mix(k))
		for nt.slots[j].meta.Load() != 0 {
			if j++; j == n {
				j = 0
			}
		}
		d := &nt.slots[j]
		d.key.Store(k)
		atomic.StorePointer(&d.ref, r)
		d.meta.Store(sl.meta.Load()&^seqMask | 2)
		nt.used++
		nt.live++
	}
	return nt
}

// del removes k's object from *p's table, shrinking the table when few
// live slots are left. Owner's lock held.
func delItab(p *atomic.Pointer[itab], h uint64, k int64) bool {
	t := p.Load()
	i := t.find(h, k)
	if i < 0 || atomic.LoadPointer(&t.slots[i].ref) == nil {
		return false
	}
	if t.lastSeq(i) {
		t = t.rebuild(0)
		p.Store(t)
		i = t.find(h, k)
	}
	t.set(i, nil, t.slots[i].meta.Load()>>seqBits)
	t.shrink(p)
	return true
}

// shrink rebuilds the table when tombstones are most of it. Owner's lock
// held.
func (t *itab) shrink(p *atomic.Pointer[itab]) {
	switch {
	case t == nil:
	case t.live == 0:
		p.Store(nil)
	case t.live*4 < t.used && len(t.slots) > minCap*4:
		p.Store(t.rebuild(0))
	}
}

// each calls f with every live slot's key, object and meta. Owner's lock
// held (or the table is no longer written).
func (t *itab) each(f func(k int64, ref unsafe.Pointer, meta uint64)) {
	if t == nil {
		return
	}
	for i := range t.slots {
		sl := &t.slots[i]
		if r := atomic.LoadPointer(&sl.ref); r != nil {
			f(sl.key.Load(), r, sl.meta.Load()>>seqBits)
		}
	}
}

// lenOf returns how many live slots t holds. Owner's lock held.
func (t *itab) lenOf() int {
	if t == nil {
		return 0
	}
	return t.live
}

// ishard is one shard of a shared map's int64 keys: its table, read with
// no lock, and the mutex that serialises its writers.
type ishard struct {
	mu  sync.Mutex
	tab atomic.Pointer[itab] // written under mu; nil: empty
	_   [64 - 16]byte
}

// ishards are the shards of a shared map's int64 (and int) keys. The top
// shardBits bits of a key's hash (mix) pick its shard.
type ishards [nShards]ishard

func (s *ishards) shard(h uint64) *ishard { return &s[h>>(64-shardBits)] }

// get returns the slot of k (hash h). No lock.
func (s *ishards) get(h uint64, k int64) (slot, bool) {
	if s == nil {
		return slot{}, false
	}
	r, m, ok := s.shard(h).tab.Load().get(h, k)
	return slot{ref: r, meta: m}, ok
}

// compute calls f with the slot of k (hash h) under its shard's mutex, and
// does what it returns.
func (s *ishards) compute(h uint64, k int64, f func(cur slot, ok bool) (slot, op)) {
	sh := s.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.tab.Load()
	var cur slot
	ok := false
	i, found := t.probe(h, k)
	if found {
		sl := &t.slots[i]
		if r := atomic.LoadPointer(&sl.ref); r != nil {
			cur, ok = slot{ref: r, meta: sl.meta.Load() >> seqBits}, true
		}
	}
	n, o := f(cur, ok)
	switch o {
	case opStore:
		putAt(&sh.tab, t, i, found, h, k, n.ref, n.meta)
	case opDelete:
		if ok {
			delItab(&sh.tab, h, k)
		}
	}
}

func (s *ishards) len() int {
	if s == nil {
		return 0
	}
	n := 0
	for i := range s {
		sh := &s[i]
		sh.mu.Lock()
		n += sh.tab.Load().lenOf()
		sh.mu.Unlock()
	}
	return n
}

func (s *ishards) clear() {
	if s == nil {
		return
	}
	for i := range s {
		sh := &s[i]
		sh.mu.Lock()
		sh.tab.Store(nil)
		sh.mu.Unlock()
	}
}

// sweep deletes the slots for which dead reports true, and returns how
// many it deleted. It looks without the lock and deletes under it.
func (s *ishards) sweep(dead func(slot) bool) int {
	if s == nil {
		return 0
	}
	n := 0
	var ks []int64
	for i := range s {
		sh := &s[i]
		ks = ks[:0]
		sh.tab.Load().each(func(k int64, r unsafe.Pointer, m uint64) {
			if dead(slot{ref: r, meta: m}) {
				ks = append(ks, k)
			}
		})
		if len(ks) == 0 {
			continue
		}
		sh.mu.Lock()
		for _, k := range ks {
			h := mix(k)
			t := sh.tab.Load()
			if j := t.find(h, k); j >= 0 {
				sl := &t.slots[j]
				if r := atomic.LoadPointer(&sl.ref); r != nil && dead(slot{ref: r, meta: sl.meta.Load() >> seqBits}) {
					delItab(&sh.tab, h, k)
					n++
				}
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// updateItab calls f with every live slot of *p's table and stores what it
// returns. Owner's lock held.
func updateItab(p *atomic.Pointer[itab], f func(k int64, ref unsafe.Pointer, meta uint64) (unsafe.Pointer, uint64)) {
	t := p.Load()
	if t == nil {
		return
	}
	for i := range t.slots { // each slot is set at most once below
		if t.lastSeq(i) {
			t = t.rebuild(0)
			p.Store(t)
			break
		}
	}
	for i := range t.slots {
		sl := &t.slots[i]
		r := atomic.LoadPointer(&sl.ref)
		if r == nil {
			continue
		}
		m := sl.meta.Load() >> seqBits
		if nr, nm := f(sl.key.Load(), r, m); nr != r || nm != m {
			t.set(i, nr, nm)
		}
	}
}
