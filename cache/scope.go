package cache

import (
	"slices"
	"sync"
	"unsafe"
)

// Scope is a private identity map for one unit of work (a request, a
// transaction). It holds its objects strongly until it ends, never reads
// from or writes to the shared maps, and is safe for concurrent use: a
// handler may fan out.
type Scope struct {
	mu    sync.Mutex
	maps  []*scopeMap // protected by mu; one per (database, type), few: searched in order
	ended bool        // protected by mu; an ended scope stores nothing
}

// find returns the scope's map of typ in d, or nil. s.mu is held.
func (s *Scope) find(d *DB, typ *Type) *scopeMap {
	for _, m := range s.maps {
		if m.typ == typ && m.db == d {
			return m
		}
	}
	return nil
}

// scopeMap is a scope's map of one Go type in one database. Entries are
// held by value: a load into a scope allocates no entry. Keys of type int64,
// the common case, live in a map of their own, which hashes them without
// going through an interface.
type scopeMap struct {
	db    *DB
	typ   *Type
	table *Table
	ints  map[int64]scopeEntry // int64 keys; nil until the first
	other map[any]scopeEntry   // every other key; nil until the first
	hint  int                  // room to make the first map with
	dead  bool                 // flushed: no longer the scope's map of its type (protected by the scope's mu)
}

func (m *scopeMap) get(key any) (scopeEntry, bool) {
	if k, ok := key.(int64); ok {
		e, ok := m.ints[k]
		return e, ok
	}
	e, ok := m.other[key]
	return e, ok
}

func (m *scopeMap) set(key any, e scopeEntry) {
	if k, ok := key.(int64); ok {
		if m.ints == nil {
			m.ints = make(map[int64]scopeEntry, m.hint)
		}
		m.ints[k] = e
		return
	}
	if m.other == nil {
		m.other = make(map[any]scopeEntry, m.hint)
	}
	m.other[key] = e
}

func (m *scopeMap) del(key any) {
	if k, ok := key.(int64); ok {
		delete(m.ints, k)
		return
	}
	delete(m.other, key)
}

func (m *scopeMap) len() int { return len(m.ints) + len(m.other) }

// update calls f for every entry and stores what it returns.
func (m *scopeMap) update(f func(key any, e scopeEntry) scopeEntry) {
	for k, e := range m.ints {
		m.ints[k] = f(k, e)
	}
	for k, e := range m.other {
		m.other[k] = f(k, e)
	}
}

// scopeEntry is one canonical object of a scope, held strongly. 16 bytes.
type scopeEntry struct {
	obj  unsafe.Pointer
	meta uint64 // epoch<<2 | expired<<1 | partial: the clock when the query that loaded the data began; expired in this scope alone (a rollback); loaded from a row that lacked some mapped columns
}

const (
	scopePartial = 1
	scopeExpired = 2
)

func newScopeEntry(obj unsafe.Pointer, epoch uint64, partial bool) scopeEntry {
	e := scopeEntry{obj: obj, meta: epoch << 2}
	if partial {
		e.meta |= scopePartial
	}
	return e
}

func (e *scopeEntry) epoch() uint64 { return e.meta >> 2 }
func (e *scopeEntry) partial() bool { return e.meta&scopePartial != 0 }
func (e *scopeEntry) expired() bool { return e.meta&scopeExpired != 0 }

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// In returns the scope's map of database d.
func (s *Scope) In(d *DB) Map { return scopeView{s, d} }

// Flush forgets every object of the scope, or those of database d (when d is
// not nil), or those of typ in d (when typ is not nil too).
func (s *Scope) Flush(d *DB, typ *Type) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maps = slices.DeleteFunc(s.maps, func(m *scopeMap) bool {
		if (d == nil || m.db == d) && (typ == nil || m.typ == typ) {
			m.kill()
			return true
		}
		return false
	})
}

// kill marks m as no longer its scope's map. The scope's mu is held.
func (m *scopeMap) kill() {
	m.dead = true
	m.db.stats.scopeEntries.Add(-int64(m.len()))
}

// DBs returns the databases the scope holds objects of.
func (s *Scope) DBs() []*DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dbs []*DB
	for _, m := range s.maps {
		if !slices.Contains(dbs, m.db) {
			dbs = append(dbs, m.db)
		}
	}
	return dbs
}

// End flushes the scope; from then on it stores nothing, so a goroutine that
// outlives its request cannot make it grow again.
func (s *Scope) End() {
	s.mu.Lock()
	for _, m := range s.maps {
		m.kill()
	}
	s.maps = nil
	s.ended = true
	s.mu.Unlock()
}

// Item is one object of a scope, as Drain hands it out.
type Item struct {
	Type    *Type
	Key     any
	Obj     unsafe.Pointer
	Epoch   uint64
	Partial bool
}

// Drain ends the scope and returns the objects it held in database d.
func (s *Scope) Drain(d *DB) []Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []Item
	for _, m := range s.maps {
		if m.db != d {
			continue
		}
		m.update(func(key any, e scopeEntry) scopeEntry {
			items = append(items, Item{Type: m.typ, Key: key, Obj: e.obj, Epoch: e.epoch(), Partial: e.partial()})
			return e
		})
	}
	for _, m := range s.maps {
		m.kill()
	}
	s.maps = nil
	s.ended = true
	return items
}

// Ended reports whether End was called.
func (s *Scope) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// Len returns how many objects the scope holds.
func (s *Scope) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.maps {
		n += m.len()
	}
	return n
}

// ExpireLoadedSince expires, in this scope only, every object of database d
// loaded by a query that began at or after epoch. A transaction that rolls
// back uses it for what it loaded.
func (s *Scope) ExpireLoadedSince(d *DB, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.maps {
		if m.db != d {
			continue
		}
		m.update(func(_ any, e scopeEntry) scopeEntry {
			if e.epoch() >= epoch {
				e.meta |= scopeExpired
			}
			return e
		})
	}
}

type scopeView struct {
	s *Scope
	d *DB
}

func (v scopeView) DB() *DB      { return v.d }
func (v scopeView) Scoped() bool { return true }

func (v scopeView) state(t *Table, typ *Type, e *scopeEntry, key any) State {
	switch {
	case e.expired() || !v.d.fresh(t, typ, key, e.epoch()):
		return Expired
	case e.partial():
		return Partial
	}
	return Fresh
}

func (v scopeView) Lookup(typ *Type, key any) (unsafe.Pointer, State) {
	return v.s.Lookup(v.d, typ, key)
}

// Lookup is s.In(d).Lookup, without making the view.
func (s *Scope) Lookup(d *DB, typ *Type, key any) (unsafe.Pointer, State) {
	v := scopeView{s, d}
	v.s.mu.Lock()
	m := v.s.find(v.d, typ)
	var e scopeEntry
	ok := false
	if m != nil {
		e, ok = m.get(key)
	}
	v.s.mu.Unlock()
	if !ok {
		return nil, Absent
	}
	st := v.state(m.table, typ, &e, key)
	if st == Fresh {
		d.stats.scoped.hits.add(1)
	}
	return e.obj, st
}

func (v scopeView) Put(typ *Type, l *Load, apply Apply) unsafe.Pointer {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if v.s.ended {
		return l.Obj
	}
	var o outcome
	p := v.put(v.mapOf(typ, 1), typ, l, apply, &o)
	o.count(&v.d.stats.scoped)
	v.d.stats.scopeEntries.Add(int64(o.misses))
	return p
}

// Cursor returns a lookup of typ's keys in the scope.
// Cursor returns nil when the scope holds no object of typ: a load into an
// empty map need not look its rows up one by one (Put still resolves a race
// with another load).
func (v scopeView) Cursor(typ *Type) Cursor {
	v.s.mu.Lock()
	m := v.s.find(v.d, typ)
	v.s.mu.Unlock()
	if m == nil {
		return nil
	}
	return &scopeCursor{v: v, typ: typ, m: m}
}

type scopeCursor struct {
	v   scopeView
	typ *Type
	m   *scopeMap // the type's map once found; protected by the scope's mu
}

func (c *scopeCursor) Lookup(key any) (unsafe.Pointer, State) {
	s := c.v.s
	s.mu.Lock()
	if c.m == nil || c.m.dead {
		c.m = s.find(c.v.d, c.typ)
	}
	m := c.m
	var e scopeEntry
	ok := false
	if m != nil {
		e, ok = m.get(key)
	}
	s.mu.Unlock()
	if !ok {
		return nil, Absent
	}
	return e.obj, c.v.state(m.table, c.typ, &e, key)
}

// PutAll is Put for every load not marked Canonical, under one lock; it
// sets each load's Obj to the canonical object.
func (v scopeView) PutAll(typ *Type, loads []Load, apply Apply) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if v.s.ended {
		return
	}
	m := v.mapOf(typ, len(loads))
	var o outcome
	for i := range loads {
		if loads[i].Canonical {
			o.hits++
		} else {
			loads[i].Obj = v.put(m, typ, &loads[i], apply, &o)
		}
	}
	o.count(&v.d.stats.scoped)
	v.d.stats.scopeEntries.Add(int64(o.misses))
}

// mapOf returns the scope's map of typ, made with room for n entries.
// v.s.mu is held.
func (v scopeView) mapOf(typ *Type, n int) *scopeMap {
	m := v.s.find(v.d, typ)
	if m == nil {
		m = &scopeMap{db: v.d, typ: typ, table: v.d.Table(typ.Table), hint: n}
		v.s.maps = append(v.s.maps, m)
	}
	return m
}

// put offers l to m. v.s.mu is held.
func (v scopeView) put(m *scopeMap, typ *Type, l *Load, apply Apply, o *outcome) unsafe.Pointer {
	e, ok := m.get(l.Key)
	if !ok {
		m.set(l.Key, newScopeEntry(l.Obj, l.Epoch, l.Partial))
		o.misses++ // a new entry: counted in scopeEntries by the caller
		return l.Obj
	}
	st := v.state(m.table, typ, &e, l.Key)
	if keep(st, l) {
		o.hits++
		return e.obj
	}
	o.refreshes++
	// Refresh in place: same pointer, temporary fields kept.
	if apply != nil {
		apply(e.obj, l.Obj)
	}
	// A partial row over a complete but expired object leaves its other
	// columns stale: the object stays partial until a complete row arrives.
	e = newScopeEntry(e.obj, l.Epoch, l.Partial && (e.partial() || st != Fresh))
	m.set(l.Key, e)
	return e.obj
}

func (v scopeView) Remove(typ *Type, key any, obj unsafe.Pointer) bool {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	m := v.s.find(v.d, typ)
	if m == nil {
		return false
	}
	e, ok := m.get(key)
	if !ok || (obj != nil && e.obj != obj) {
		return false
	}
	m.del(key)
	v.d.stats.scopeEntries.Add(-1)
	return true
}
