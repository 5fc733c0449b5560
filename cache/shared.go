package cache

import (
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

	ints atomic.Pointer[ishards]        // int64 and int keys: read with no lock
	strs atomic.Pointer[shards[string]] // string keys
	anys atomic.Pointer[shards[any]]    // every other key
	mu   sync.Mutex                     // makes the shards
}

func (d *DB) sharedMap(typ *Type) *sharedMap {
	// The hit path: the type's slot for this database, with no hashing.
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
}

var slotsMu sync.Mutex // serialises setSlot

// get returns the slot of key.
func (m *sharedMap) get(key any) (slot, bool) {
	switch k := key.(type) {
	case int64:
		return m.ints.Load().get(mix(k), k)
	case int:
		return m.ints.Load().get(mix(int64(k)), int64(k))
	case string:
		return m.strs.Load().get(strShard(k), k)
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
		makeShards(m, &m.ints).compute(mix(k), k, f)
	case int:
		makeShards(m, &m.ints).compute(mix(int64(k)), int64(k), f)
	case string:
		makeShards(m, &m.strs).compute(strShard(k), k, f)
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
	m := d.sharedMap(typ)
	e, ok := m.ints.Load().get(mix(k), k)
	return m.hit(found(m, e, ok, k))
}

// LookupSharedString is LookupShared of a string key, without putting the
// key in an interface: a hit allocates nothing.
func (d *DB) LookupSharedString(typ *Type, k string) (any, State) {
	m := d.sharedMap(typ)
	e, ok := m.strs.Load().get(strShard(k), k)
	return m.hit(found(m, e, ok, k))
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
	p := v.put(v.d.sharedMap(typ), l, apply, &o)
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

func (v sharedView) put(m *sharedMap, l *Load, apply Apply, o *outcome) unsafe.Pointer {
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
	mine := newSlot(lobj, m.strong, l.Epoch, l.Partial)
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
	for i := range loads {
		if loads[i].Canonical {
			o.hits++
		} else {
			loads[i].Obj = typ.box(v.put(m, &loads[i], apply, &o))
		}
	}
	o.count(&v.d.stats.shared)
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
