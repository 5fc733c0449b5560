package cache

import (
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ktab is a table of int64 keys (itab) or string keys (stab) that readers
// probe without a lock: open addressing with linear probing, the words a
// writer changes read with atomic loads.
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
// A slot is the key, the object (or weak pointer) and the meta word: 24
// bytes for an int64 key, 40 for a string with its hash. Sizes are not
// powers of two (the index is the high word of the placement word times
// the size), so that the load factor stays between the new and the
// maximum load (full, sizeFor): for int64 keys 5/7 to 7/8, 27–34 bytes an
// entry.
type ktab[K comparable] struct {
	slots []kslot[K]
	used  int32 // slots that hold a key (live or tombstone); owner's lock
	live  int32 // slots that hold an object; owner's lock
	disp  int32 // owner's lock: the sum of the used slots' distances from home
	// seed is 0 while keys are placed at their placement word mod the
	// size (see ihash), else the seed of the mixer that places them
	// (seeded). Fixed for the table's life.
	seed uint32
	// recip is 2^64/len(slots), rounded up: h*recip (mod 2^64) is h mod n
	// as a fraction of 2^64, with no division (Lemire's fastmod).
	recip uint64
	// hints is nil in a table of strong references (and of string keys).
	// In one of weak pointers (a weak shared map's int64 shards: see
	// weak) it holds, from hintMin slots on, the address of each slot's
	// object, for the hit path to prefetch (hints.go), and below hintMin
	// none (noHints). A hint is never turned back into a pointer: a
	// stale one costs a wasted prefetch and nothing else. Written under
	// the owner's lock with the slot (set), read with atomic loads. (A
	// pointer, not a slice: one word keeps the table's header at 56
	// bytes, 64 with the allocator's rounding, and a strong map of 10^3
	// entries within 40 bytes an entry.)
	hints *[]uintptr
	// (A table of a few keys, as each of a shared map's 64 shards holds
	// at 10^3 entries, costs little beyond its slots.)
}

// kslot is a slot of a ktab. Its key is written once, before its meta
// word first becomes non-zero, and never again: a reader reads the key
// only after it loaded a non-zero meta word, which orders the key's write
// before its read.
type kslot[K comparable] struct {
	key  K
	ref  unsafe.Pointer // atomic: the object, or a weak pointer's bits; nil: no object
	meta atomic.Uint64  // slot meta << seqBits | sequence; 0: never used
}

// itab is the table of int64 keys; stab, of string keys, each kept with
// its hash (skey).
type (
	itab = ktab[int64]
	stab = ktab[skey]
)

// skey is a string key with its placement word (shash): two keys compare
// their hashes before their bytes, so that a probe past other keys
// compares no strings.
type skey struct {
	h uint64
	s string
}

func strKey(k string) skey { return skey{shash(k), k} }

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

	// A table placed by the key mod its size (ihash) is rebuilt seeded
	// once a key lands further than maxDisp from home, or the mean
	// distance exceeds maxMeanDisp: keys chosen to collide cost a
	// rebuild, not long probes.
	// (Random keys, at the highest load, average 3.5.)
	maxDisp     = 64
	maxMeanDisp = 6
)

// hashOf is the placement word of a key: ihash of an int64, the hash an
// skey carries.
func hashOf[K comparable](k K) uint64 {
	switch x := any(k).(type) {
	case int64:
		return ihash(x)
	case skey:
		return x.h
	}
	panic("idmap/cache: a ktab of keys that are neither int64 nor skey")
}

// shash is the placement word of a string key: its hash with the
// process's random seed, which no caller can predict.
func shash(k string) uint64 { return maphash.String(hashSeed, k) }

// full reports whether used slots would load t past its maximum (the
// table then grows): 7/8 for int64 keys, which mostly sit in their home
// slots (ihash); 2/3 for string keys, placed at random, whose probes grow
// long at higher loads (a hit at 10^3 keys: 57 ns at 7/8, 30 ns at 2/3,
// 28 ns at 1/2; 60–80 bytes a slot of 40).
func (t *ktab[K]) full(used int) bool {
	if isStr[K]() {
		return used*3 > len(t.slots)*2
	}
	return used*maxLoadDen > len(t.slots)*maxLoadNum
}

// fits reports whether n more keys fit in t without a rebuild.
func (t *ktab[K]) fits(n int) bool { return t != nil && !t.full(int(t.used)+n) }

// sizeFor is the size of a new table for live keys: at 5/7 for int64
// keys, 1/2 for strings.
func sizeFor[K comparable](live int) int {
	if isStr[K]() {
		return live*2 + 1
	}
	return live*newLoadDen/newLoadNum + 1
}

func isStr[K comparable]() bool {
	var k K
	_, ok := any(k).(skey)
	return ok
}

// ihash is the placement word of an int64 key: the key itself. A table
// that is not seeded puts key k in slot k mod n (of n slots, an odd
// number), as CPython's dict puts ints: keys that are consecutive, or a
// fixed distance apart, as primary keys mostly are, land in distinct slots,
// and a hit is one probe. The low shardBits bits pick a shared map's shard;
// the keys of one shard, a multiple of 64 apart, are still distinct mod an
// odd n. Keys that collide under it (chosen so, or by chance) make the
// table switch to a seeded mixer (itab.seed), whose placement no caller
// can predict.
func ihash(k int64) uint64 { return uint64(k) }

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

// home is the first slot of a key of placement word h (hashOf): h mod the
// table's size, or, in a seeded table, the seeded mix of h scaled to the
// size. (For h beyond about 2^64/n² the product drifts from h mod n by
// a slot every 2^64/n² keys: consecutive keys still take consecutive
// slots.)
func (t *ktab[K]) home(h uint64) int {
	if t.seed != 0 {
		h = mix(int64(h ^ uint64(t.seed)))
	} else {
		h *= t.recip
	}
	hi, _ := bits.Mul64(h, uint64(len(t.slots)))
	return int(hi)
}

// dist returns how far slot i is from home slot j, along the probe.
func (t *ktab[K]) dist(i, j int) int {
	if i >= j {
		return i - j
	}
	return i + len(t.slots) - j
}

// crowded reports whether a table placed by ihash (not seeded) holds keys too far from
// home (see maxDisp), after a key was placed d slots from its home.
func (t *ktab[K]) crowded(d int) bool {
	return t.seed == 0 && (d > maxDisp || int(t.disp) > maxMeanDisp*int(t.used)+maxDisp)
}

func packMeta(meta uint64) uint64 {
	if meta>>metaShift > maxEpoch {
		meta = maxEpoch<<metaShift | meta&(1<<metaShift-1)
	}
	return meta << seqBits
}

// get returns the object and meta of key k (hash h) in t; ok is false when
// t holds no object under k. No lock. The key in its home slot, with no
// writer between its stores, is read here; the probe past it and the
// seqlock's retries in probeGet. (get is not inlined: the compiler's
// budget is 80, get costs 233.)
func (t *ktab[K]) get(h uint64, k K) (ref unsafe.Pointer, meta uint64, ok bool) {
	if t == nil {
		return nil, 0, false
	}
	i := t.home(h)
	if uint(i) < uint(len(t.slots)) {
		sl := &t.slots[i]
		if m1 := sl.meta.Load(); m1 != 0 && m1&1 == 0 && sl.key == k {
			r := atomic.LoadPointer(&sl.ref)
			if sl.meta.Load() == m1 {
				return r, m1 >> seqBits, r != nil
			}
		}
	}
	return t.probeGet(i, k)
}

// probeGet is get past the home slot i of k: the probe, and the seqlock's
// retries.
func (t *ktab[K]) probeGet(i int, k K) (ref unsafe.Pointer, meta uint64, ok bool) {
	s := t.slots
	n := len(s)
	for range n {
		sl := &s[i]
		m1 := sl.meta.Load()
		if m1 == 0 {
			return nil, 0, false
		}
		if sl.key == k {
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
func (t *ktab[K]) probe(h uint64, k K) (i int, found bool) {
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
		if sl.key == k {
			return i, true
		}
		if i++; i == n {
			i = 0
		}
	}
	return -1, false // not reached: a table is never full
}

// find returns the index of k's slot in t, or -1. Owner's lock held.
func (t *ktab[K]) find(h uint64, k K) int {
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
func (t *ktab[K]) lastSeq(i int) bool { return t.slots[i].meta.Load()&seqMask >= seqMask-1 }

// set gives slot i the object ref and meta under the seqlock; slot i is not
// at its last sequence (lastSeq). In a table with hints, hint is the
// address of ref's object if the caller has it at hand, else 0 (then it
// is read from the weak pointer). Owner's lock held.
func (t *ktab[K]) set(i int, ref unsafe.Pointer, meta uint64, hint uintptr) {
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
	if h := t.hints; h != nil && uint(i) < uint(len(*h)) {
		if hint == 0 {
			hint = weakAddr(ref)
		}
		storeHint(&(*h)[i], hint)
	}
	seq++
	if seq > seqMask {
		panic("idmap/cache: itab: a slot's sequence wraps in place") // see lastSeq
	}
	sl.meta.Store(packMeta(meta) | seq)
}

// putItab stores k (hash h) with ref and meta in *p's table, growing it
// when needed, and publishes the new table if it made one. Owner's lock
// held.
func putItab[K comparable](p *atomic.Pointer[ktab[K]], h uint64, k K, ref unsafe.Pointer, meta uint64) {
	t := p.Load()
	i, found := t.probe(h, k)
	putAt(p, t, i, found, h, k, ref, meta, false, 0)
}

// putAt is putItab after t.probe(h, k) returned i and found: a store of a
// new key probes the table once. weak tells whether ref is a weak
// pointer's word, for the table this store makes (from none, or larger
// when t is full), which keeps hints if so; hint is set's.
func putAt[K comparable](p *atomic.Pointer[ktab[K]], t *ktab[K], i int, found bool, h uint64, k K, ref unsafe.Pointer, meta uint64, weak bool, hint uintptr) {
	if found && t.lastSeq(i) {
		t = t.rebuild(1)
		p.Store(t)
		i, found = t.probe(h, k) // a tombstone is not rebuilt: then k is new
	}
	if found {
		t.set(i, ref, meta, hint)
		return
	}
	if ref == nil {
		return
	}
	if t == nil || i < 0 || t.full(int(t.used)+1) {
		t = t.rebuildAs(1, weak)
		p.Store(t)
		i, _ = t.probe(h, k)
	}
	d := t.dist(i, t.home(h))
	if t.crowded(d) {
		t = t.rebuildSeeded(1, weak)
		p.Store(t)
		i, _ = t.probe(h, k)
		d = t.dist(i, t.home(h))
	}
	t.slots[i].key = k // before set makes the meta word non-zero
	t.used++
	t.disp += int32(d)
	t.set(i, ref, meta, hint)
}

// rebuild returns a new table holding t's live slots with room for extra
// more at about newLoad, placed as t's are (a table seeded once stays
// seeded), or seeded if the placement by ihash crowds them; of weak
// pointers if t's are. Owner's lock held.
func (t *ktab[K]) rebuild(extra int) *ktab[K] { return t.rebuildAs(extra, t.weak()) }

// rebuildAs is rebuild of a table whose slots hold weak pointers if weak
// (which t, possibly nil, may not say).
func (t *ktab[K]) rebuildAs(extra int, weak bool) *ktab[K] {
	var seed uint32
	if t != nil {
		seed = t.seed
	}
	nt := t.rebuildWith(extra, seed, weak)
	if nt.crowded(0) {
		return t.rebuildSeeded(extra, weak)
	}
	return nt
}

// rebuildSeeded is rebuildAs with a new random seed.
func (t *ktab[K]) rebuildSeeded(extra int, weak bool) *ktab[K] {
	return t.rebuildWith(extra, rand.Uint32()|1, weak)
}

// weak reports whether t's slots hold weak pointers (see hints).
func (t *ktab[K]) weak() bool { return t != nil && t.hints != nil }

// noHints are the hints of a weak table smaller than hintMin: none.
var noHints []uintptr

func (t *ktab[K]) rebuildWith(extra int, seed uint32, weak bool) *ktab[K] {
	live := extra
	if t != nil {
		live += int(t.live)
	}
	n := max(minCap, sizeFor[K](live)) | 1 // odd: see ihash
	nt := &ktab[K]{slots: make([]kslot[K], n), seed: seed, recip: ^uint64(0)/uint64(n) + 1}
	var hints []uintptr // nt's, if it keeps them
	switch {
	case !weak || isStr[K]():
	case n >= hintMin:
		h := make([]uintptr, n) // escapes here only: other tables allocate no header
		nt.hints, hints = &h, h
	default:
		nt.hints = &noHints
	}
	if t == nil {
		return nt
	}
	for i := range t.slots {
		sl := &t.slots[i]
		r := atomic.LoadPointer(&sl.ref)
		if r == nil {
			continue
		}
		k := sl.key
		home := nt.home(hashOf(k))
		j := home
		for nt.slots[j].meta.Load() != 0 {
			if j++; j == n {
				j = 0
			}
		}
		d := &nt.slots[j]
		d.key = k
		atomic.StorePointer(&d.ref, r)
		if hints != nil {
			if old := t.hints; old != nil && i < len(*old) {
				hints[j] = atomic.LoadUintptr(&(*old)[i])
			} else {
				hints[j] = weakAddr(r)
			}
		}
		d.meta.Store(sl.meta.Load()&^seqMask | 2)
		nt.used++
		nt.live++
		nt.disp += int32(nt.dist(j, home))
	}
	return nt
}

// del removes k's object from *p's table, shrinking the table when few
// live slots are left. Owner's lock held.
func delItab[K comparable](p *atomic.Pointer[ktab[K]], h uint64, k K) bool {
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
	t.set(i, nil, t.slots[i].meta.Load()>>seqBits, 0)
	t.shrink(p)
	return true
}

// shrink rebuilds the table when tombstones are most of it. Owner's lock
// held.
func (t *ktab[K]) shrink(p *atomic.Pointer[ktab[K]]) {
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
func (t *ktab[K]) each(f func(k K, ref unsafe.Pointer, meta uint64)) {
	if t == nil {
		return
	}
	for i := range t.slots {
		sl := &t.slots[i]
		if r := atomic.LoadPointer(&sl.ref); r != nil {
			f(sl.key, r, sl.meta.Load()>>seqBits)
		}
	}
}

// lenOf returns how many live slots t holds. Owner's lock held.
func (t *ktab[K]) lenOf() int {
	if t == nil {
		return 0
	}
	return int(t.live)
}

// khard is one shard of a shared map's int64 (or string) keys: its
// table, read with no lock, and the mutex that serialises its writers.
type khard[K comparable] struct {
	mu   sync.Mutex
	tab  atomic.Pointer[ktab[K]] // written under mu; nil: empty
	weak bool                    // the tables hold weak pointers (putAt); fixed
	_    [64 - 17]byte
}

// kshards are the shards of a shared map's int64 (and int) keys, or of
// its string keys. The low shardBits bits of a key's placement word
// (hashOf) pick its shard.
type kshards[K comparable] [nShards]khard[K]

type (
	ishards = kshards[int64]
	sshards = kshards[skey]
)

func (s *kshards[K]) shard(h uint64) *khard[K] { return &s[h&(nShards-1)] }

// get returns the slot of k (hash h). No lock.
func (s *kshards[K]) get(h uint64, k K) (slot, bool) {
	if s == nil {
		return slot{}, false
	}
	r, m, ok := s.shard(h).tab.Load().get(h, k)
	return slot{ref: r, meta: m}, ok
}

// compute calls f with the slot of k (hash h) under its shard's mutex, and
// does what it returns.
func (s *kshards[K]) compute(h uint64, k K, f func(cur slot, ok bool) (slot, op)) {
	s.computeIf(h, k, f, false)
}

// computeIf is compute; with try, it does nothing when the shard's mutex
// is held.
func (s *kshards[K]) computeIf(h uint64, k K, f func(cur slot, ok bool) (slot, op), try bool) {
	sh := s.shard(h)
	if !try {
		sh.mu.Lock()
	} else if !sh.mu.TryLock() {
		return
	}
	defer sh.mu.Unlock()
	sh.computeLocked(h, k, f)
}

// computeLocked is compute with the shard's mutex held.
func (sh *khard[K]) computeLocked(h uint64, k K, f func(cur slot, ok bool) (slot, op)) {
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
		putAt(&sh.tab, t, i, found, h, k, n.ref, n.meta, sh.weak, 0)
	case opDelete:
		if ok {
			delItab(&sh.tab, h, k)
		}
	}
}

func (s *kshards[K]) len() int {
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

func (s *kshards[K]) clear() {
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
func (s *kshards[K]) sweep(dead func(slot) bool) int {
	if s == nil {
		return 0
	}
	n := 0
	var ks []K
	for i := range s {
		sh := &s[i]
		ks = ks[:0]
		sh.tab.Load().each(func(k K, r unsafe.Pointer, m uint64) {
			if dead(slot{ref: r, meta: m}) {
				ks = append(ks, k)
			}
		})
		if len(ks) == 0 {
			continue
		}
		sh.mu.Lock()
		for _, k := range ks {
			h := hashOf(k)
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
func updateItab[K comparable](p *atomic.Pointer[ktab[K]], f func(k K, ref unsafe.Pointer, meta uint64) (unsafe.Pointer, uint64)) {
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
		if nr, nm := f(sl.key, r, m); nr != r || nm != m {
			t.set(i, nr, nm, 0)
		}
	}
}
