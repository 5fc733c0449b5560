package cache

import (
	"sync"
	"unsafe"
)

// sharedMap is the process-wide map of one Go type in one database.
type sharedMap struct {
	db    *DB
	typ   *Type
	table *Table
	m     sync.Map // key → *entry
}

func (d *DB) sharedMap(typ *Type) *sharedMap {
	// The hit path: the type's slot for this database, with no hashing.
	if p := typ.slots.Load(); p != nil && d.id < len(*p) {
		if m := (*p)[d.id]; m != nil {
			return m
		}
	}
	x, loaded := d.shared.LoadOrStore(typ, &sharedMap{db: d, typ: typ, table: d.Table(typ.Table)})
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

// Shared returns d's shared map. It is safe for concurrent use; a lookup
// takes no lock.
func (d *DB) Shared() Map { return sharedView{d} }

type sharedView struct{ d *DB }

func (v sharedView) DB() *DB      { return v.d }
func (v sharedView) Scoped() bool { return false }

func (v sharedView) Lookup(typ *Type, key any) (unsafe.Pointer, State) {
	return v.d.LookupShared(typ, key)
}

// Cursor returns a lookup of typ's keys in the shared map.
func (v sharedView) Cursor(typ *Type) Cursor { return v.d.sharedMap(typ) }

// LookupShared is d.Shared().Lookup, without making the view. A fresh
// object found counts as a hit.
func (d *DB) LookupShared(typ *Type, key any) (unsafe.Pointer, State) {
	p, st := d.sharedMap(typ).Lookup(key)
	if st == Fresh {
		d.stats.shared.hits.add(1)
	}
	return p, st
}

// Lookup returns the canonical object of key and its state.
func (m *sharedMap) Lookup(key any) (unsafe.Pointer, State) {
	x, ok := m.m.Load(key)
	if !ok {
		return nil, Absent
	}
	e := x.(*entry)
	p := e.object()
	if p == nil {
		return nil, Absent
	}
	if e.obj != nil && m.db.bound.Load() != nil {
		e.touch()
	}
	return p, m.state(e, key)
}

func (m *sharedMap) state(e *entry, key any) State {
	epoch := e.epoch()
	switch {
	case !m.db.fresh(m.table, m.typ, key, epoch):
		return Expired
	case epoch < m.db.ageFloor.Load():
		m.db.stats.expiredAge.Add(1)
		return Expired
	case e.partial():
		return Partial
	}
	return Fresh
}

func (v sharedView) Put(typ *Type, l *Load, apply Apply) unsafe.Pointer {
	var o outcome
	p := v.put(v.d.sharedMap(typ), l, apply, &o)
	o.count(&v.d.stats.shared)
	return p
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
	if v.d.paused.Load() > 0 || v.d.noShared.Load() {
		// Paused (a bus lost its subscription): loads are not stored,
		// since nothing could tell this map of what others write. Or the
		// shared maps are off (SetShared).
		o.misses++
		return l.Obj
	}
	var ne *entry
	for {
		x, ok := m.m.Load(l.Key)
		if ok {
			e := x.(*entry)
			p := e.object()
			if p != nil && keep(m.state(e, l.Key), l) {
				o.hits++
				return p
			}
			// Objects already handed out are never written to: a new
			// object becomes the entry. It keeps the old object's
			// temporary fields when the type says how to copy it.
			obj := l.Obj
			if p := e.object(); p != nil && apply != nil && m.typ.New != nil && m.typ.Copy != nil {
				obj = m.typ.New()
				m.typ.Copy(obj, p)
				apply(obj, l.Obj)
			}
			e2 := newEntry(obj, m.typ.Strong, l.Epoch, l.Partial)
			if m.m.CompareAndSwap(l.Key, x, e2) {
				if p != nil {
					o.refreshes++
				} else {
					o.misses++
				}
				v.stored(m, l.Key, e2)
				return obj
			}
			continue
		}
		if ne == nil {
			ne = newEntry(l.Obj, m.typ.Strong, l.Epoch, l.Partial)
		}
		if _, loaded := m.m.LoadOrStore(l.Key, ne); !loaded {
			o.misses++
			v.stored(m, l.Key, ne)
			return l.Obj
		}
	}
}

// stored tells the strong-entry bound, if any, of a strong entry stored.
func (v sharedView) stored(m *sharedMap, key any, e *entry) {
	if e.obj == nil {
		return
	}
	if b := v.d.bound.Load(); b != nil {
		b.add(m, key, e)
	}
}

func (v sharedView) PutAll(typ *Type, loads []Load, apply Apply) {
	m := v.d.sharedMap(typ)
	var o outcome
	for i := range loads {
		if loads[i].Canonical {
			o.hits++
		} else {
			loads[i].Obj = v.put(m, &loads[i], apply, &o)
		}
	}
	o.count(&v.d.stats.shared)
}

func (v sharedView) Remove(typ *Type, key any, obj unsafe.Pointer) bool {
	m := v.d.sharedMap(typ)
	for {
		x, ok := m.m.Load(key)
		if !ok {
			return false
		}
		if obj != nil && x.(*entry).object() != obj {
			return false
		}
		if m.m.CompareAndDelete(key, x) {
			return true
		}
	}
}

// FlushShared forgets every entry of d's shared maps, or those of typ only
// when typ is not nil.
func (d *DB) FlushShared(typ *Type) {
	d.shared.Range(func(k, v any) bool {
		if typ == nil || k.(*Type) == typ {
			v.(*sharedMap).m.Clear()
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
			v.(*sharedMap).m.Clear()
		}
		return true
	})
}

// SharedLen returns how many entries d's shared map of typ holds, dead weak
// entries not yet swept included.
func (d *DB) SharedLen(typ *Type) int {
	n := 0
	d.sharedMap(typ).m.Range(func(_, _ any) bool { n++; return true })
	return n
}
