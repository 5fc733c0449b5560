package cache

import (
	"github.com/go-idmap/idmap/cache/internal/ref"
	"sync"
	"sync/atomic"
	"unsafe"
)

// sharedMap is the process-wide map of one Go type in one database. Its
// slots are held by value in shards (shards.go), one set of shards per
// kind of key, made on first use.
type sharedMap struct {
	db     *DB
	typ    *Type
	table  *Table
	strong bool // typ.Strong: slots hold their objects, not weak pointers

	ints atomic.Pointer[ishards]     // int64 and int keys: read with no lock
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
	x, loaded := d.shared.LoadOrStore(typ, &sharedMap{db: d, typ: typ, table: d.Table(typ.Table), strong: typ.Strong})
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
		return m.ints.Load().get(ihash(k), k)
	case int:
		return m.ints.Load().get(ihash(int64(k)), int64(k))
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
// shards.compute), making the shards if need be.
func (m *sharedMap) compute(key any, f func(cur slot, ok bool) (slot, op)) {
	switch k := key.(type) {
	case int64:
		makeShards(m, &m.ints).compute(ihash(k), k, f)
	case int:
		makeShards(m, &m.ints).compute(ihash(int64(k)), int64(k), f)
	case string:
		sk := strKey(k)
		makeShards(m, &m.strs).compute(sk.h, sk, f)
	default:
		makeShards(m, &m.anys).compute(anyShard(k), k, f)
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
	return m.ints.Load().len() + m.strs.Load().len() + m.anys.Load().len()
}

// clear forgets every slot of m.
func (m *sharedMap) clear() {
	m.ints.Load().clear()
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
	return m.hit(found(m, e, ok, key))
}

// LookupSharedInt is LookupShared of an int64 (or int) key, without
// putting the key in an interface: a hit allocates nothing.
func (d *DB) LookupSharedInt(typ *Type, k int64) (any, State) {
	m := d.firstMap(typ)
	if m == nil {
		m = d.newSharedMap(typ)
	}
	return sharedFound(d, m, typ, m.ints.Load(), ihash(k), k, k)
}

// LookupSharedString is LookupShared of a string key, without putting the
// key in an interface: a hit allocates nothing.
func (d *DB) LookupSharedString(typ *Type, k string) (any, State) {
	m := d.firstMap(typ)
	if m == nil {
		m = d.newSharedMap(typ)
	}
	sk := strKey(k)
	return sharedFound(d, m, typ, m.strs.Load(), sk.h, sk, k)
}

// sharedFound looks k (placement word h), the table's form of the caller's
// key, up in the lock-free shards s of m. The hit path: a complete entry
// that no expiry, pause, lease, age or bound concerns (each a word that a
// write changes before it returns); anything else is decided by found,
// with the caller's key.
func sharedFound[K, U comparable](d *DB, m *sharedMap, typ *Type, s *kshards[K], h uint64, k K, key U) (any, State) {
	var e slot
	var ok bool
	if s != nil {
		e.ref, e.meta, ok = s.shard(h).tab.Load().get(h, k)
		if ok && e.meta&metaPartial == 0 && (e.meta&metaRef != 0 || !m.strong || d.bound.Load() == nil) {
			if epoch := e.epoch(); d.clean(m.table, epoch) && epoch >= d.ageFloor.Load() {
				p := e.ref
				if !m.strong {
					p = ref.Value(p)
				}
				if p != nil {
					d.stats.shared.hits.add(1)
					return typ.box(p), Fresh
				}
			}
		}
	}
	return m.hit(found(m, e, ok, key))
}

// hit is the end of a LookupShared: a fresh object counts as a hit.
func (m *sharedMap) hit(p unsafe.Pointer, st State) (any, State) {
	if st == Fresh {
		m.db.stats.shared.hits.add(1)
	}
	return m.typ.box(p), st
}

// Lookup returns the canonical object of key and its state: m is the
// Cursor of its type.
func (m *sharedMap) Lookup(key any) (any, State) {
	e, ok := m.get(key)
	p, st := found(m, e, ok, key)
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
	if v.d.paused.Load() > 0 || v.d.noShared.Load() {
		// Paused (a bus lost its subscription): loads are not stored,
		// since nothing could tell this map of what others write. Or the
		// shared maps are off (SetShared).
		o.misses++
		return lobj
	}
	// The load's own slot is made before the shard is locked: a weak
	// pointer takes long to make, and most loads that get here are stored.
	var mine slot
	if weak != nil {
		mine = slot{ref: weak, meta: newSlot(nil, true, l.Epoch, l.Partial).meta}
	} else {
		mine = newSlot(lobj, m.strong, l.Epoch, l.Partial)
	}
	var out unsafe.Pointer
	var stored slot
	m.compute(l.Key, func(cur slot, ok bool) (slot, op) {
		var p unsafe.Pointer
		if ok {
			p = cur.object(m.strong)
		}
		if p != nil && keep(m.state(cur, l.Key), l) {
			o.hits++
			out = p
			return cur, opKeep
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
			out, stored = np, newSlot(np, m.strong, l.Epoch, l.Partial)
			return stored, opStore
		}
		out, stored = lobj, mine
		return stored, opStore
	})
	if stored.ref != nil {
		v.stored(m, l.Key, stored)
	}
	return out
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
	checkLoads(typ, loads)
	m := v.d.sharedMap(typ)
	var o outcome
	var weak []unsafe.Pointer
	if !m.strong && len(loads) >= minWeakBatch {
		weak = make([]unsafe.Pointer, min(len(loads), weakBatch))
	}
	for start := 0; start < len(loads); start += weakBatch {
		chunk := loads[start:min(start+weakBatch, len(loads))]
		if weak != nil {
			makeWeak(typ, chunk, weak)
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
	o.count(&v.d.stats.shared)
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
