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

// LookupShared is d.Shared().Lookup, without making the view.
func (d *DB) LookupShared(typ *Type, key any) (unsafe.Pointer, State) {
	return d.sharedMap(typ).Lookup(key)
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
	return p, m.state(e, key)
}

func (m *sharedMap) state(e *entry, key any) State {
	switch {
	case !m.db.fresh(m.table, m.typ, key, e.epoch()):
		return Expired
	case e.partial():
		return Partial
	}
	return Fresh
}

func (v sharedView) Put(typ *Type, l *Load, apply Apply) unsafe.Pointer {
	m := v.d.sharedMap(typ)
	var ne *entry
	for {
		x, ok := m.m.Load(l.Key)
		if ok {
			e := x.(*entry)
			if p := e.object(); p != nil && keep(m.state(e, l.Key), l) {
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
			if m.m.CompareAndSwap(l.Key, x, newEntry(obj, m.typ.Strong, l.Epoch, l.Partial)) {
				return obj
			}
			continue
		}
		if ne == nil {
			ne = newEntry(l.Obj, m.typ.Strong, l.Epoch, l.Partial)
		}
		if _, loaded := m.m.LoadOrStore(l.Key, ne); !loaded {
			return l.Obj
		}
	}
}

func (v sharedView) PutAll(typ *Type, loads []Load, apply Apply) {
	for i := range loads {
		if !loads[i].Canonical {
			loads[i].Obj = v.Put(typ, &loads[i], apply)
		}
	}
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
