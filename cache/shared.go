package cache

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/go-idmap/idmap/cache/internal/ref"
)

// sharedMap is the process-wide map of one Go type in one database. Its
// slots are held by value in shards (shards.go), one set of shards per
// kind of key, made on first use.
type sharedMap struct {
	db     *DB
	typ    *Type
	table  *Table
	strong bool // typ.Strong: slots hold their objects, not weak pointers

	// ints are the shards of int64 and int keys, read with no lock: held
	// in the map itself, so that a hit reads the shard's table without
	// going through a pointer first (4 KiB a map; the other kinds of keys
	// are made on first use).
	ints ishards
	strs atomic.Pointer[sshards]     // string keys: read with no lock
	anys atomic.Pointer[shards[any]] // every other key
	mu   sync.Mutex                  // makes the shards
}

func (d *DB) sharedMap(typ *Type) *sharedMap {
	if m := d.firstMap(typ); m != nil {
		return m
	}
	return d.newSharedMap(typ)
}

// firstMap is sharedMap's hit path (inlined): the map of the type's first
// database, if d is that database, with one load.
func (d *DB) firstMap(typ *Type) *sharedMap {
	if m := (*sharedMap)(atomic.LoadPointer(&typ.first)); m != nil && m.db == d {
		return m
	}
	return nil
}

// newSharedMap is sharedMap past the type's first database: the type's
// slot for d (no hashing), else d's map of typ, made on first use.
func (d *DB) newSharedMap(typ *Type) *sharedMap {
	if p := typ.slots.Load(); p != nil && d.id < len(*p) {
		if m := (*p)[d.id]; m != nil {
			return m
		}
	}
	n := &sharedMap{db: d, typ: typ, table: d.Table(typ.Table), strong: typ.Strong}
	for i := range n.ints {
		n.ints[i].weak = !typ.Strong
	}
	x, loaded := d.shared.LoadOrStore(typ, n)
	m := x.(*sharedMap)
	if !loaded && !typ.Strong {
		registerWeak(m)
	}
	typ.setSlot(d.id, m)
	return m
}

// setSlot records the shared map of typ in database id.
func (t *Type) setSlot(id int, m *sharedMap) {
	slotsMu.Lock()
	defer slotsMu.Unlock()
	var old []*sharedMap
	if p := t.slots.Load(); p != nil {
		old = *p
	}
	next := make([]*sharedMap, max(len(old), id+1))
	copy(next, old)
	next[id] = m
	t.slots.Store(&next)
	atomic.CompareAndSwapPointer(&t.first, nil, unsafe.Pointer(m))
}

var slotsMu sync.Mutex // serialises setSlot

// get returns the slot of key.
func (m *sharedMap) get(key any) (slot, bool) {
	switch k := key.(type) {
	case int64:
		return m.ints.get(ihash(k), k)
	case int:
		return m.ints.get(ihash(int64(k)), int64(k))
	case string:
		sk := strKey(k)
		return m.strs.Load().get(sk.h, sk)
	}
	if s := m.anys.Load(); s != nil {
		return s.get(anyShard(key), key)
	}
	return slot{}, false
}

// compute runs f on the slot of key under its shard's write lock (see
// shards.computeIf), making the shards if need be.
func (m *sharedMap) compute(key any, f func(cur slot, ok bool) (slot, op)) {
	m.computeIf(key, f, false)
}

// computeIf is compute; with try, it does nothing when the key's shard is
// locked (a restamp, which must not wait).
func (m *sharedMap) computeIf(key any, f func(cur slot, ok bool) (slot, op), try bool) {
	switch k := key.(type) {
	case int64:
		m.ints.computeIf(ihash(k), k, f, try)
	case int:
		m.ints.computeIf(ihash(int64(k)), int64(k), f, try)
	case string:
		sk := strKey(k)
		makeShards(m, &m.strs).computeIf(sk.h, sk, f, try)
	default:
		makeShards(m, &m.anys).computeIf(anyShard(k), k, f, try)
	}
}

func makeShards[S any](m *sharedMap, p *atomic.Pointer[S]) *S {
	if s := p.Load(); s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := p.Load()
	if s == nil {
		s = new(S)
		p.Store(s)
	}
	return s
}

// len returns how many slots m holds, dead weak ones not yet swept
// included.
func (m *sharedMap) len() int {
	return m.ints.len() + m.strs.Load().len() + m.anys.Load().len()
}

// clear forgets every slot of m.
func (m *sharedMap) clear() {
	m.ints.clear()
	m.strs.Load().clear()
	m.anys.Load().clear()
}

// Shared returns d's shared map. It is safe for concurrent use; a lookup
// of an int64 or int key takes no lock, of another key the read lock of
// one shard.
func (d *DB) Shared() Map { return sharedView{d} }

type sharedView struct{ d *DB }

func (v sharedView) DB() *DB      { return v.d }
func (v sharedView) Scoped() bool { return false }

func (v sharedView) Lookup(typ *Type, key any) (any, State) {
	return v.d.LookupShared(typ, key)
}

// Cursor returns a lookup of typ's keys in the shared map.
func (v sharedView) Cursor(typ *Type) Cursor { return v.d.sharedMap(typ) }

// LookupShared is d.Shared().Lookup, without making the view. A fresh
// object found counts as a hit.
func (d *DB) LookupShared(typ *Type, key any) (any, State) {
	m := d.sharedMap(typ)
	e, ok := m.get(key)
	return m.hit(foundRestamped(m, e, ok, key, func(e slot, c uint64) { m.restamp(key, e, c) }))
}

// LookupSharedInt is LookupShared of an int64 (or int) key, without
// putting the key in an interface: a hit allocates nothing.
func (d *DB) LookupSharedInt(typ *Type, k int64) (any, State) {
	p, st := d.LookupSharedIntPtr(typ, k)
	return typ.box(p), st
}

// LookupSharedIntPtr is LookupSharedInt with the object as a pointer, as
// the Type's Go type points to: a Get hit (the root package's getHit)
// makes no interface.
//
// Its hit path is written out flat (the type's first map, the key in its
// home slot, sharedFound's conditions): one call where sharedFound and
// ktab.get made three. Everything else goes to lookupSharedIntPtr,
// sharedFound's general form (TestFastPathsAgreeWithGeneral compares them).
// Each condition is an if of its own that leaves at once, and cleanSlot's
// test is written out: the compiler made a test of several conditions, or
// an inlined function's bool, into a value that it then tested again, and
// this form cut the weak hit at 10^3 from 1.94x to 1.89x a plain map's
// lookup, and the strong hit from 1.30x to 1.26x (median of 9 runs,
// bench/testdata/HISTORY.md).
func (d *DB) LookupSharedIntPtr(typ *Type, k int64) (unsafe.Pointer, State) {
	m := d.firstMap(typ)
	if m == nil {
		return d.lookupSharedIntPtr(typ, k)
	}
	t := m.ints.shard(ihash(k)).tab.Load()
	if t == nil {
		return d.lookupSharedIntPtr(typ, k)
	}
	i := t.home(ihash(k))
	if uint(i) >= uint(len(t.slots)) { // never: spares the bounds check
		return d.lookupSharedIntPtr(typ, k)
	}
	if len(t.slots) >= hintMin { // a small table has none: no load
		if h := t.hints; h != nil && uint(i) < uint(len(*h)) {
			prefetch(atomic.LoadUintptr(&(*h)[i]))
		}
	}
	sl := &t.slots[i]
	m1 := sl.meta.Load()
	r := atomic.LoadPointer(&sl.ref)
	// The key is read only after a non-zero meta word (kslot).
	if m1 == 0 || m1&1 != 0 || sl.key != k || r == nil || sl.meta.Load() != m1 {
		return d.lookupSharedIntPtr(typ, k)
	}
	// cleanSlot, written out.
	meta := m1 >> seqBits
	if meta&metaPartial != 0 {
		return d.lookupSharedIntPtr(typ, k)
	}
	if epoch := meta >> metaShift; epoch < d.floor.Load() || epoch < m.table.floor.Load() {
		return d.lookupSharedIntPtr(typ, k)
	}
	if m.strong {
		if meta&metaRef == 0 && d.bound.Load() != nil {
			return d.lookupSharedIntPtr(typ, k)
		}
	} else if r = ref.Value(r); r == nil {
		return d.lookupSharedIntPtr(typ, k)
	}
	d.stats.shared.hits.addOn(uint(procPin()), 1) // add, a call fewer
	procUnpin()
	return r, Fresh
}

// lookupSharedIntPtr is LookupSharedIntPtr past its hit path.
//
//go:noinline
func (d *DB) lookupSharedIntPtr(typ *Type, k int64) (unsafe.Pointer, State) {
	m := d.sharedMap(typ)
	return sharedFound(d, m, &m.ints, ihash(k), k, k)
}

// LookupSharedString is LookupShared of a string key, without putting the
// key in an interface: a hit allocates nothing.
func (d *DB) LookupSharedString(typ *Type, k string) (any, State) {
	m := d.firstMap(typ)
	if m == nil {
		m = d.newSharedMap(typ)
	}
	sk := strKey(k)
	p, st := sharedFound(d, m, m.strs.Load(), sk.h, sk, k)
	return typ.box(p), st
}

// sharedFound looks k (placement word h), the table's form of the caller's
// key, up in the lock-free shards s of m. The hit path: a complete entry
// that no expiry, pause, lease, age or bound concerns (each a word that a
// write changes before it returns); anything else is decided by found,
// with the caller's key.
func sharedFound[K, U comparable](d *DB, m *sharedMap, s *kshards[K], h uint64, k K, key U) (unsafe.Pointer, State) {
	var e slot
	var ok bool
	if s != nil {
		e.ref, e.meta, ok = s.shard(h).tab.Load().get(h, k)
		if ok && d.cleanSlot(m, e.meta) {
			if p := e.object(m.strong); p != nil {
				d.stats.shared.hits.addOn(uint(procPin()), 1) // add, a call fewer
				procUnpin()
				return p, Fresh
			}
		}
	}
	return m.hitPtr(foundRestamped(m, e, ok, key, func(e slot, c uint64) { s.restamp(h, k, e, c) }))
}

// cleanSlot reports whether a slot of m with meta word meta is a clean
// hit, as far as its word goes: a complete entry that no expiry, pause,
// lease, age or bound concerns (clean, and for a strong map under a bound,
// an entry the bound has marked referenced). The hit paths' one test;
// LookupSharedIntPtr writes it out (TestFastPathsAgreeWithGeneral).
func (d *DB) cleanSlot(m *sharedMap, meta uint64) bool {
	return meta&metaPartial == 0 && (meta&metaRef != 0 || !m.strong || d.bound.Load() == nil) &&
		d.clean(m.table, meta>>metaShift)
}

// hit is the end of a LookupShared: a fresh object counts as a hit.
func (m *sharedMap) hit(p unsafe.Pointer, st State) (any, State) {
	p, st = m.hitPtr(p, st)
	return m.typ.box(p), st
}

// hitPtr is hit without the interface.
func (m *sharedMap) hitPtr(p unsafe.Pointer, st State) (unsafe.Pointer, State) {
	if st == Fresh {
		m.db.stats.shared.hits.add(1)
	}
	return p, st
}

// Lookup returns the canonical object of key and its state: m is the
// Cursor of its type.
func (m *sharedMap) Lookup(key any) (any, State) {
	e, ok := m.get(key)
	p, st := foundRestamped(m, e, ok, key, func(e slot, c uint64) { m.restamp(key, e, c) })
	return m.typ.box(p), st
}

// found is the end of a lookup of key k in m that found e (if ok): its
// object and state.
func found[K comparable](m *sharedMap, e slot, ok bool, k K) (unsafe.Pointer, State) {
	if !ok {
		return nil, Absent
	}
	p := e.object(m.strong)
	if p == nil {
		return nil, Absent
	}
	if m.strong && e.meta&metaRef == 0 && m.db.bound.Load() != nil {
		m.touch(any(k), e.ref)
	}
	return p, slotState(m, e, k)
}

// touch marks the strong slot of key as referenced, for the strong-entry
// bound, if it still holds ref. It writes only when the bit is clear: once
// per entry per round of the bound.
func (m *sharedMap) touch(key any, ref unsafe.Pointer) {
	m.compute(key, func(cur slot, ok bool) (slot, op) {
		if !ok || cur.ref != ref || cur.meta&metaRef != 0 {
			return cur, opKeep
		}
		cur.meta |= metaRef
		return cur, opStore
	})
}

func (m *sharedMap) state(e slot, key any) State { return slotState(m, e, key) }

func slotState[K comparable](m *sharedMap, e slot, key K) State {
	epoch := e.epoch()
	switch {
	case !freshOf(m.db, m.table, m.typ, key, epoch):
		return Expired
	case epoch < m.db.ageFloor.Load():
		m.db.stats.expiredAge.Add(1)
		return Expired
	case e.partial():
		return Partial
	}
	return Fresh
}

func (v sharedView) Put(typ *Type, l *Load, apply Apply) any {
	var o outcome
	p := v.put(v.d.sharedMap(typ), l, nil, apply, &o)
	o.count(&v.d.stats.shared)
	return typ.box(p)
}

// outcome counts what loads did to a map, to be added to its counters at
// once.
type outcome struct{ hits, misses, refreshes uint64 }

func (o *outcome) count(c *mapCounters) {
	c.hits.add(o.hits)
	c.misses.add(o.misses)
	c.refreshes.add(o.refreshes)
}

// put stores l in m; weak, if not nil, is the weak pointer to l's object,
// made beforehand (PutAll).
func (v sharedView) put(m *sharedMap, l *Load, weak unsafe.Pointer, apply Apply, o *outcome) unsafe.Pointer {
	lobj := m.typ.ptr(l.Obj)
	if v.off() {
		// Paused (a bus lost its subscription): loads are not stored,
		// since nothing could tell this map of what others write. Or the
		// shared maps are off (SetShared).
		o.misses++
		return lobj
	}
	// The load's own slot is made before the shard is locked: a weak
	// pointer takes long to make, and most loads that get here are stored.
	mine := m.loadSlot(l, lobj, weak)
	var out unsafe.Pointer
	var stored slot
	m.compute(l.Key, func(cur slot, ok bool) (slot, op) {
		var o2 op
		out, stored, o2 = m.decide(cur, ok, l, lobj, mine, apply, o)
		if o2 == opKeep {
			return cur, opKeep
		}
		return stored, o2
	})
	if stored.ref != nil {
		v.stored(m, l.Key, stored)
	}
	return out
}

// off reports whether loads are not stored in d's shared maps: d is
// paused (a bus lost its subscription) or its shared maps are off.
func (v sharedView) off() bool { return v.d.paused.Load() > 0 || v.d.noShared.Load() }

// loadSlot returns the slot that stores l, whose object is lobj; weak,
// if not nil, is the weak pointer to it, made beforehand.
func (m *sharedMap) loadSlot(l *Load, lobj, weak unsafe.Pointer) slot {
	if weak != nil {
		return slot{ref: weak, meta: newSlot(nil, true, l.Epoch, l.Partial).meta}
	}
	return newSlot(lobj, m.strong, l.Epoch, l.Partial)
}

// decide is what a load l (object lobj, slot mine) does to the slot cur of
// its key (ok: there is one), under the shard's write lock: keep cur and
// return its object (opKeep), or store the returned slot, the load's or a
// new object's (opStore). It counts the outcome in o.
func (m *sharedMap) decide(cur slot, ok bool, l *Load, lobj unsafe.Pointer, mine slot, apply Apply, o *outcome) (out unsafe.Pointer, stored slot, _ op) {
	var p unsafe.Pointer
	if ok {
		p = cur.object(m.strong)
	}
	if p != nil && keep(m.state(cur, l.Key), l) {
		o.hits++
		return p, slot{}, opKeep
	}
	if p != nil {
		o.refreshes++
	} else {
		o.misses++
	}
	// Objects already handed out are never written to: a new object
	// becomes the entry. It keeps the old object's temporary fields
	// when the type says how to copy it.
	if p != nil && apply != nil && m.typ.New != nil && m.typ.Copy != nil {
		obj := m.typ.New()
		m.typ.Copy(obj, m.typ.box(p))
		apply(obj, l.Obj)
		np := m.typ.ptr(obj)
		return np, newSlot(np, m.strong, l.Epoch, l.Partial), opStore
	}
	return lobj, mine, opStore
}

// stored tells the strong-entry bound, if any, of a strong slot stored.
func (v sharedView) stored(m *sharedMap, key any, e slot) {
	if !m.strong {
		return
	}
	if b := v.d.bound.Load(); b != nil {
		b.add(m, key, e.ref)
	}
}

func (v sharedView) PutAll(typ *Type, loads []Load, apply Apply) {
	v.PutChunks(typ, [][]Load{loads}, apply)
}

// PutChunks is PutAll of the loads of every chunk, in order. Of a load of
// nShards rows or more, the loads with int64 (or int) keys are stored
// shard by shard, each shard locked once for the loads of a batch, after
// each shard's table was made large enough for every new key of the
// chunks (reserveInts); the others, and those of a smaller load (grouping
// them by shard would save nothing), one by one.
func (v sharedView) PutChunks(typ *Type, chunks [][]Load, apply Apply) {
	n := checkChunks(typ, chunks)
	m := v.d.sharedMap(typ)
	var o outcome
	var b *intBatch
	if n >= nShards && !v.off() {
		b = intBatches.Get().(*intBatch)
		defer b.release()
		m.reserveInts(chunks, b)
	}
	var weak []unsafe.Pointer
	if !m.strong && n >= minWeakBatch {
		weak = make([]unsafe.Pointer, min(n, weakBatch))
	}
	for _, loads := range chunks {
		for start := 0; start < len(loads); start += weakBatch {
			chunk := loads[start:min(start+weakBatch, len(loads))]
			if weak != nil {
				makeWeak(typ, chunk, weak)
			}
			if b != nil {
				v.putBatch(m, chunk, weak, apply, &o, b)
				continue
			}
			for i := range chunk {
				l := &chunk[i]
				if l.Canonical {
					o.hits++
					continue
				}
				var w unsafe.Pointer
				if weak != nil {
					w = weak[i]
				}
				l.Obj = typ.box(v.put(m, l, w, apply, &o))
			}
		}
	}
	o.count(&v.d.stats.shared)
}

// intBatch is PutChunks' scratch: the loads of a batch with int64 keys,
// grouped by shard.
type intBatch struct {
	keys   [weakBatch]int64
	isInt  [weakBatch]bool           // the load is stored by putShard
	stored [weakBatch]unsafe.Pointer // putShard stored this slot's ref
	order  [weakBatch]uint16         // indices of the batch's int loads, by shard
	start  [nShards + 1]int          // shard s's indices are order[start[s]:start[s+1]]
	count  [nShards]int
}

var intBatches = sync.Pool{New: func() any { return new(intBatch) }}

// release returns b to intBatches, holding no object.
func (b *intBatch) release() {
	clear(b.stored[:])
	intBatches.Put(b)
}

// intKey returns the int64 of an int64 or int key.
func intKey(key any) (int64, bool) {
	switch k := key.(type) {
	case int64:
		return k, true
	case int:
		return int64(k), true
	}
	return 0, false
}

// reserveInts makes each int shard's table large enough for the new int
// keys of chunks' loads (those not marked Canonical), so that storing them
// rebuilds each table at most once, here, and not once per fifth more keys
// as it grows (itab.go's maxLoad/newLoad). A key the table holds is not
// new: it is looked up, without the lock, in the shards that would grow
// otherwise.
func (m *sharedMap) reserveInts(chunks [][]Load, b *intBatch) {
	s := &m.ints
	clear(b.count[:])
	for _, c := range chunks {
		for i := range c {
			if k, ok := intKey(c[i].Key); ok && !c[i].Canonical {
				b.count[ihash(k)&(nShards-1)]++
			}
		}
	}
	// Shards whose tables would grow count only the keys they do not
	// hold: a load of rows already there (expired, say) makes no room.
	var exact [nShards]bool
	some := false
	for i := range s {
		if b.count[i] > 0 {
			sh := &s[i]
			sh.mu.Lock()
			switch t := sh.tab.Load(); {
			case t == nil: // every key is new
				reserveItab(sh, b.count[i])
			case !t.fits(b.count[i]):
				exact[i], some = true, true
			}
			b.count[i] = 0
			sh.mu.Unlock()
		}
	}
	if some {
		for _, c := range chunks {
			for i := range c {
				if k, ok := intKey(c[i].Key); ok && !c[i].Canonical {
					h := ihash(k)
					if sh := h & (nShards - 1); exact[sh] {
						if _, _, found := s[sh].tab.Load().get(h, k); !found {
							b.count[sh]++
						}
					}
				}
			}
		}
	}
	for i := range s {
		if exact[i] && b.count[i] > 0 {
			sh := &s[i]
			sh.mu.Lock()
			reserveItab(sh, b.count[i])
			sh.mu.Unlock()
		}
	}
}

// reserveLoad is the share of its slots that a table made by reserveItab
// uses once the keys it was made for are stored: between newLoad and
// maxLoad (itab.go), so that it neither grows at the next new key nor
// holds more room than a table that grew to that size.
const reserveLoadNum, reserveLoadDen = 4, 5

// reserveItab makes room in sh's table for n more keys: if they do not
// fit, it rebuilds the table for its live keys and n more at reserveLoad.
// sh's lock held.
func reserveItab(sh *khard[int64], n int) {
	t := sh.tab.Load()
	if n <= 0 || t.fits(n) {
		return
	}
	want := t.lenOf() + n
	// rebuild(extra) makes room for t's live keys and extra more at
	// newLoad: the same table holds want keys at reserveLoad.
	extra := want*reserveLoadDen*newLoadNum/(reserveLoadNum*newLoadDen) + 1 - t.lenOf()
	sh.tab.Store(t.rebuildAs(extra, sh.weak))
}

// putBatch stores the loads of chunk (at most weakBatch; weak holds their
// weak pointers, if m is weak): those with int64 keys shard by shard (see
// putShard), the others one by one.
func (v sharedView) putBatch(m *sharedMap, chunk []Load, weak []unsafe.Pointer, apply Apply, o *outcome, b *intBatch) {
	clear(b.count[:])
	for i := range chunk {
		l := &chunk[i]
		b.isInt[i] = false
		if l.Canonical {
			o.hits++
			continue
		}
		k, ok := intKey(l.Key)
		if !ok {
			var w unsafe.Pointer
			if weak != nil {
				w = weak[i]
			}
			l.Obj = m.typ.box(v.put(m, l, w, apply, o))
			continue
		}
		b.keys[i], b.isInt[i] = k, true
		b.count[ihash(k)&(nShards-1)]++
	}
	b.start[0] = 0
	for s := range nShards {
		b.start[s+1] = b.start[s] + b.count[s]
	}
	if b.start[nShards] == 0 {
		return
	}
	next := b.start // a copy: where the next index of each shard goes
	for i := range chunk {
		if b.isInt[i] {
			s := ihash(b.keys[i]) & (nShards - 1)
			b.order[next[s]] = uint16(i)
			next[s]++
		}
	}
	shs := &m.ints
	for s := range nShards {
		if idx := b.order[b.start[s]:b.start[s+1]]; len(idx) > 0 {
			v.putShard(m, &shs[s], chunk, idx, weak, apply, o, b)
		}
	}
}

// putShard stores the loads chunk[i] for i in idx, whose int64 keys
// (b.keys[i]) are all in shard sh, under one lock of the shard: for each,
// what put does. The strong-entry bound, if any, is told of the slots
// stored once the lock is released, as put tells it.
func (v sharedView) putShard(m *sharedMap, sh *khard[int64], chunk []Load, idx []uint16, weak []unsafe.Pointer, apply Apply, o *outcome, b *intBatch) {
	if v.off() {
		o.misses += uint64(len(idx)) // see put
		return
	}
	func() {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, i := range idx {
			l := &chunk[i]
			lobj := m.typ.ptr(l.Obj)
			var w unsafe.Pointer
			if weak != nil {
				w = weak[i]
			}
			mine := m.loadSlot(l, lobj, w)
			k := b.keys[i]
			h := ihash(k)
			t := sh.tab.Load()
			var cur slot
			ok := false
			j, found := t.probe(h, k)
			if found {
				if r := atomic.LoadPointer(&t.slots[j].ref); r != nil {
					cur, ok = slot{ref: r, meta: t.slots[j].meta.Load() >> seqBits}, true
				}
			}
			out, n, op := m.decide(cur, ok, l, lobj, mine, apply, o)
			b.stored[i] = nil
			if op == opStore {
				putAt(&sh.tab, t, j, found, h, k, n.ref, n.meta, sh.weak, uintptr(out))
				b.stored[i] = n.ref
			}
			l.Obj = m.typ.box(out)
		}
	}()
	if m.strong && v.d.bound.Load() != nil {
		for _, i := range idx {
			if r := b.stored[i]; r != nil {
				v.stored(m, chunk[i].Key, slot{ref: r})
			}
		}
	}
}

// weakBatch is how many loads' weak pointers PutAll makes at once; fewer
// loads than minWeakBatch make theirs one by one (no buffer to allocate).
const weakBatch, minWeakBatch = 1024, 64

// makeWeak makes the weak pointers to the objects of loads (but the
// canonical ones) into weak, last first. The runtime keeps an object's
// weak handle in a list of its span sorted by address, and a new one walks
// the list to its place: objects scanned one after another sit one after
// another in their span, so that first-to-last walks the whole list each
// time, and last-to-first stops at its head (weak.Make of 10^6 new
// 32-byte objects: ~510 ns each in order, ~270 ns in reverse by 1,000s).
func makeWeak(typ *Type, loads []Load, weak []unsafe.Pointer) {
	for i := len(loads) - 1; i >= 0; i-- {
		weak[i] = nil
		if !loads[i].Canonical {
			weak[i] = ref.Weak(typ.ptr(loads[i].Obj))
		}
	}
}

func (v sharedView) Remove(typ *Type, key any, o any) bool {
	obj, ok := typ.match(o)
	if !ok {
		return false
	}
	m := v.d.sharedMap(typ)
	if _, ok := m.get(key); !ok {
		return false
	}
	removed := false
	m.compute(key, func(cur slot, ok bool) (slot, op) {
		if !ok || (obj != nil && cur.object(m.strong) != obj) {
			return cur, opKeep
		}
		removed = true
		return cur, opDelete
	})
	return removed
}

// FlushShared forgets every entry of d's shared maps, or those of typ only
// when typ is not nil.
func (d *DB) FlushShared(typ *Type) {
	d.shared.Range(func(k, v any) bool {
		if typ == nil || k.(*Type) == typ {
			v.(*sharedMap).clear()
		}
		return true
	})
}

// FlushSharedTable forgets every entry of d's shared maps whose type is on
// table.
func (d *DB) FlushSharedTable(table string) {
	table = foldName(table)
	d.shared.Range(func(k, v any) bool {
		if foldName(k.(*Type).Table) == table {
			v.(*sharedMap).clear()
		}
		return true
	})
}

// SharedLen returns how many entries d's shared map of typ holds, dead weak
// entries not yet swept included.
func (d *DB) SharedLen(typ *Type) int { return d.sharedMap(typ).len() }
