package cache

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Scope is a private identity map for one unit of work (a request, a
// transaction). It holds its objects strongly until it ends, never reads
// from or writes to the shared maps, and is safe for concurrent use: a
// handler may fan out.
//
// Readers and writers. A lookup of an int64, int or string key reads the
// scope's table of those keys with no lock (ktab). A lookup of another
// key takes the read lock of one stripe, picked by the P that runs the
// reading goroutine, so that goroutines reading one scope at once do not
// fight over one cache line; a write (a load, a flush, an expiry) takes every
// stripe's write lock, after mu. Loads write once per Bind; lookups are
// the common case.
type Scope struct {
	mu      sync.Mutex                              // serialises writers; held while they hold the stripes
	stripes atomic.Pointer[[scopeStripes]scopeLock] // nil until the scope first holds a map; never replaced
	// maps are the scope's maps, one per (database, type), few: searched
	// in order. The slice is replaced, never changed, by a writer holding
	// every stripe, so that a reader needs no lock to find a map.
	maps  atomic.Pointer[[]*scopeMap]
	ended atomic.Bool // an ended scope stores nothing
	led   *ledger     // written once under mu, with the first map
}

const scopeStripes = 8

// scopeLock is one stripe, two cache lines of its own (see shard).
type scopeLock struct {
	sync.RWMutex
	_ [128 - 24]byte
}

// rlock read-locks the calling goroutine's stripe and returns it, or nil if
// the scope never held a map.
func (s *Scope) rlock() *scopeLock {
	st := s.stripes.Load()
	if st == nil {
		return nil
	}
	l := &st[pid()%scopeStripes]
	l.RLock()
	return l
}

// lock takes the scope for writing: mu, then every stripe (made if make_
// is set and the scope has none yet). It returns false, holding only mu,
// when the scope has no stripes (it never held a map).
func (s *Scope) lock(make_ bool) bool {
	s.mu.Lock()
	st := s.stripes.Load()
	if st == nil {
		if !make_ {
			return false
		}
		st = new([scopeStripes]scopeLock)
		s.stripes.Store(st)
	}
	for i := range st {
		st[i].Lock()
	}
	return true
}

func (s *Scope) unlock(locked bool) {
	if locked {
		st := s.stripes.Load()
		for i := range st {
			st[i].Unlock()
		}
	}
	s.mu.Unlock()
}

func (s *Scope) mapList() []*scopeMap {
	if p := s.maps.Load(); p != nil {
		return *p
	}
	return nil
}

// find returns the scope's map of typ in d, or nil.
func (s *Scope) find(d *DB, typ *Type) *scopeMap {
	for _, m := range s.mapList() {
		if m.typ == typ && m.db == d {
			return m
		}
	}
	return nil
}

// ledger counts the entries each map of a scope holds, apart from the
// scope: when the scope is collected without having ended (its context
// was dropped), a cleanup takes what its maps held off the databases'
// gauges of scope entries.
type ledger struct {
	mu    sync.Mutex
	items []*ledgerItem // protected by mu
}

type ledgerItem struct {
	db *DB
	n  atomic.Int64 // entries of the map now
}

// add counts n entries more (or fewer) in the map of item.
func (it *ledgerItem) add(n int64) {
	if n != 0 {
		it.n.Add(n)
		it.db.stats.scopeEntries.Add(n)
	}
}

func (l *ledger) item(d *DB) *ledgerItem {
	it := &ledgerItem{db: d}
	l.mu.Lock()
	l.items = append(l.items, it)
	l.mu.Unlock()
	return it
}

// release takes what the scope still held off the gauges.
func (l *ledger) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, it := range l.items {
		it.add(-it.n.Load())
	}
	l.items = nil
}

// scopeMap is a scope's map of one Go type in one database. Entries are
// held by value: a load into a scope allocates no entry. int64 (and int)
// keys and string keys, the common cases, live in tables of their own,
// which hash them without going through an interface and are read with no
// lock (ktab); other keys in a Go map that the scope's stripes protect
// (read under one). Every write holds all the stripes.
type scopeMap struct {
	db    *DB
	typ   *Type
	table *Table
	count *ledgerItem
	ints  atomic.Pointer[itab] // int64 and int keys: read with no lock; written under the scope's locks
	strs  atomic.Pointer[stab] // string keys: the same
	other map[any]scopeEntry   // every other key; nil until the first
	hint  int                  // room to make the first map with
	dead  atomic.Bool          // flushed: no longer the scope's map of its type
}

func (m *scopeMap) get(key any) (scopeEntry, bool) {
	var e scopeEntry
	var ok bool
	switch k := key.(type) {
	case int64:
		e, ok = m.getInt(k)
	case int:
		e, ok = m.getInt(int64(k))
	case string:
		e, ok = m.getStr(k)
	default:
		e, ok = m.other[key]
	}
	return e, ok
}

// getStr returns the entry of string key k, with no lock.
func (m *scopeMap) getStr(k string) (scopeEntry, bool) {
	sk := strKey(k)
	r, meta, ok := m.strs.Load().get(sk.h, sk)
	return scopeEntry{obj: r, meta: meta}, ok
}

// getInt returns the entry of int key k, with no lock.
func (m *scopeMap) getInt(k int64) (scopeEntry, bool) {
	r, meta, ok := m.ints.Load().get(ihash(k), k)
	return scopeEntry{obj: r, meta: meta}, ok
}

func (m *scopeMap) set(key any, e scopeEntry) {
	switch k := key.(type) {
	case int64:
		m.setInt(k, e)
	case int:
		m.setInt(int64(k), e)
	case string:
		sk := strKey(k)
		putKey(&m.strs, sk.h, sk, e, m.hint)
	default:
		setIn(&m.other, key, e, m.hint)
	}
}

func (m *scopeMap) setInt(k int64, e scopeEntry) { putKey(&m.ints, ihash(k), k, e, m.hint) }

// putKey stores e under k (placement word h) in *p, making the table with
// room for hint entries first.
func putKey[K comparable](p *atomic.Pointer[ktab[K]], h uint64, k K, e scopeEntry, hint int) {
	if p.Load() == nil && hint > 1 {
		p.Store((*ktab[K])(nil).rebuild(hint))
	}
	putItab(p, h, k, e.obj, e.meta)
}

func setIn[K comparable](p *map[K]scopeEntry, k K, e scopeEntry, hint int) {
	if *p == nil {
		*p = make(map[K]scopeEntry, hint)
	}
	(*p)[k] = e
}

func (m *scopeMap) del(key any) {
	switch k := key.(type) {
	case int64:
		delItab(&m.ints, ihash(k), k)
	case int:
		delItab(&m.ints, ihash(int64(k)), int64(k))
	case string:
		sk := strKey(k)
		delItab(&m.strs, sk.h, sk)
	default:
		delete(m.other, key)
	}
}

func (m *scopeMap) len() int {
	return m.ints.Load().lenOf() + m.strs.Load().lenOf() + len(m.other)
}

// update calls f for every entry and stores what it returns.
func (m *scopeMap) update(f func(key any, e scopeEntry) scopeEntry) {
	updateItab(&m.ints, func(k int64, r unsafe.Pointer, meta uint64) (unsafe.Pointer, uint64) {
		e := f(k, scopeEntry{obj: r, meta: meta})
		return e.obj, e.meta
	})
	updateItab(&m.strs, func(k skey, r unsafe.Pointer, meta uint64) (unsafe.Pointer, uint64) {
		e := f(k.s, scopeEntry{obj: r, meta: meta})
		return e.obj, e.meta
	})
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
	locked := s.lock(false)
	defer s.unlock(locked)
	if !locked {
		return
	}
	maps := slices.DeleteFunc(slices.Clone(s.mapList()), func(m *scopeMap) bool {
		if (d == nil || m.db == d) && (typ == nil || m.typ == typ) {
			m.kill()
			return true
		}
		return false
	})
	s.maps.Store(&maps)
}

// kill marks m as no longer its scope's map. The scope is write-locked.
func (m *scopeMap) kill() {
	m.dead.Store(true)
	m.count.add(-int64(m.len()))
}

// DBs returns the databases the scope holds objects of.
func (s *Scope) DBs() []*DB {
	var dbs []*DB
	for _, m := range s.mapList() {
		if !slices.Contains(dbs, m.db) {
			dbs = append(dbs, m.db)
		}
	}
	return dbs
}

// End flushes the scope; from then on it stores nothing, so a goroutine that
// outlives its request cannot make it grow again.
func (s *Scope) End() {
	locked := s.lock(false)
	s.ended.Store(true)
	if locked {
		s.endLocked()
	}
	s.unlock(locked)
}

// endLocked kills every map. The scope is write-locked.
func (s *Scope) endLocked() {
	for _, m := range s.mapList() {
		m.kill()
	}
	s.maps.Store(nil)
}

// Item is one object of a scope, as Drain hands it out.
type Item struct {
	Type    *Type
	Key     any
	Obj     any // a pointer of Type's Go type
	Epoch   uint64
	Partial bool
}

// Drain ends the scope and returns the objects it held in database d.
func (s *Scope) Drain(d *DB) []Item {
	locked := s.lock(false)
	defer s.unlock(locked)
	s.ended.Store(true)
	if !locked {
		return nil
	}
	var items []Item
	for _, m := range s.mapList() {
		if m.db != d {
			continue
		}
		m.update(func(key any, e scopeEntry) scopeEntry {
			items = append(items, Item{Type: m.typ, Key: key, Obj: m.typ.box(e.obj), Epoch: e.epoch(), Partial: e.partial()})
			return e
		})
	}
	s.endLocked()
	return items
}

// Ended reports whether End was called.
func (s *Scope) Ended() bool { return s.ended.Load() }

// Len returns how many objects the scope holds.
func (s *Scope) Len() int {
	l := s.rlock()
	if l == nil {
		return 0
	}
	defer l.RUnlock()
	n := 0
	for _, m := range s.mapList() {
		n += m.len()
	}
	return n
}

// ExpireLoadedSince expires, in this scope only, every object of database d
// loaded by a query that began at or after epoch. A transaction that rolls
// back uses it for what it loaded.
func (s *Scope) ExpireLoadedSince(d *DB, epoch uint64) {
	locked := s.lock(false)
	defer s.unlock(locked)
	if !locked {
		return
	}
	for _, m := range s.mapList() {
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
	return scopeState(v.d, t, typ, e, key)
}

func scopeState[K comparable](d *DB, t *Table, typ *Type, e *scopeEntry, key K) State {
	switch {
	case e.expired() || !freshOf(d, t, typ, key, e.epoch()):
		return Expired
	case e.partial():
		return Partial
	}
	return Fresh
}

func (v scopeView) Lookup(typ *Type, key any) (any, State) {
	return v.s.Lookup(v.d, typ, key)
}

// Lookup is s.In(d).Lookup, without making the view.
func (s *Scope) Lookup(d *DB, typ *Type, key any) (any, State) {
	switch k := key.(type) {
	case int64:
		return s.LookupInt(d, typ, k)
	case int:
		return s.LookupInt(d, typ, int64(k))
	case string:
		return s.LookupString(d, typ, k)
	}
	m, e, ok := s.getLocked(d, typ, nil, key)
	return scopeHit(s, d, m, typ, e, ok, key)
}

// getLocked returns the scope's map of typ in d (m itself while it is
// not dead) and the entry of key in it, under a stripe's read lock. m is
// returned unchanged when the scope never held a map.
func (s *Scope) getLocked(d *DB, typ *Type, m *scopeMap, key any) (*scopeMap, scopeEntry, bool) {
	l := s.rlock()
	if l == nil {
		return m, scopeEntry{}, false
	}
	if m == nil || m.dead.Load() {
		m = s.find(d, typ)
	}
	var e scopeEntry
	ok := false
	if m != nil {
		e, ok = m.get(key)
	}
	l.RUnlock()
	return m, e, ok
}

// LookupInt is Lookup of an int64 (or int) key, without putting the key in
// an interface: a hit allocates nothing.
// It takes no lock: the scope's int keys are in a table read with atomic
// loads only (itab), so that goroutines sharing a scope do not write one
// cache line per lookup.
func (s *Scope) LookupInt(d *DB, typ *Type, k int64) (any, State) {
	m := s.find(d, typ)
	if m == nil {
		return nil, Absent
	}
	e, ok := m.getInt(k)
	return scopeFound(s, d, m, typ, e, ok, k)
}

// LookupString is Lookup of a string key, without putting the key in an
// interface: a hit allocates nothing. It takes no lock (see LookupInt).
func (s *Scope) LookupString(d *DB, typ *Type, k string) (any, State) {
	m := s.find(d, typ)
	if m == nil {
		return nil, Absent
	}
	e, ok := m.getStr(k)
	return scopeFound(s, d, m, typ, e, ok, k)
}

// scopeFound is the end of a lock-free scope lookup that found e (if ok)
// in m, a map of s. The hit path (see LookupSharedInt) is decided here;
// anything else is scopeHit's.
func scopeFound[K comparable](s *Scope, d *DB, m *scopeMap, typ *Type, e scopeEntry, ok bool, k K) (any, State) {
	if ok && e.meta&(scopePartial|scopeExpired) == 0 && d.clean(m.table, e.epoch()) {
		d.stats.scoped.hits.addOn(uint(procPin()), 1) // add, a call fewer
		procUnpin()
		return typ.box(e.obj), Fresh
	}
	return scopeHit(s, d, m, typ, e, ok, k)
}

// scopeHit is the end of a scope lookup that found e (if ok) in m, a map
// of s. A fresh entry that the check of its table's expired keys found
// fresh is restamped (restamp.go).
func scopeHit[K comparable](s *Scope, d *DB, m *scopeMap, typ *Type, e scopeEntry, ok bool, k K) (any, State) {
	if !ok {
		return nil, Absent
	}
	c, again := d.restampAt(m.table, e.epoch(), false)
	st := scopeState(d, m.table, typ, &e, k)
	if st == Fresh {
		d.stats.scoped.hits.add(1)
		if again {
			restampScoped(s, m, k, e, c)
		}
	}
	return typ.box(e.obj), st
}

func (v scopeView) Put(typ *Type, l *Load, apply Apply) any {
	lobj := typ.ptr(l.Obj)
	locked := v.s.lock(true)
	defer v.s.unlock(locked)
	if v.s.ended.Load() {
		return typ.box(lobj)
	}
	var o outcome
	m := v.mapOf(typ, 1)
	p := v.put(m, typ, l, apply, &o)
	o.count(&v.d.stats.scoped)
	m.count.add(int64(o.misses))
	return typ.box(p)
}

// Cursor returns a lookup of typ's keys in the scope.
// Cursor returns nil when the scope holds no object of typ: a load into an
// empty map need not look its rows up one by one (Put still resolves a race
// with another load).
func (v scopeView) Cursor(typ *Type) Cursor {
	m := v.s.find(v.d, typ)
	if m == nil {
		return nil
	}
	return &scopeCursor{v: v, typ: typ, m: m}
}

type scopeCursor struct {
	v   scopeView
	typ *Type
	m   *scopeMap // the type's map once found
}

func (c *scopeCursor) Lookup(key any) (any, State) {
	switch key.(type) {
	case int64, int, string:
	default:
		return c.lookupLocked(key)
	}
	// An int or string key: the scope's tables are read with no lock.
	m := c.m
	if m == nil || m.dead.Load() {
		m = c.v.s.find(c.v.d, c.typ)
	}
	c.m = m
	if m == nil {
		return nil, Absent
	}
	e, ok := m.get(key)
	if !ok {
		return nil, Absent
	}
	return c.typ.box(e.obj), c.v.state(m.table, c.typ, &e, key)
}

// lookupLocked is Lookup of a key that is neither an int nor a string,
// under a stripe's read lock.
func (c *scopeCursor) lookupLocked(key any) (any, State) {
	m, e, ok := c.v.s.getLocked(c.v.d, c.typ, c.m, key)
	c.m = m
	if !ok {
		return nil, Absent
	}
	return c.typ.box(e.obj), c.v.state(m.table, c.typ, &e, key)
}

// PutAll is Put for every load not marked Canonical, under one lock; it
// sets each load's Obj to the canonical object.
func (v scopeView) PutAll(typ *Type, loads []Load, apply Apply) {
	v.PutChunks(typ, [][]Load{loads}, apply)
}

// PutChunks is PutAll of the loads of every chunk, in order, under one
// lock.
func (v scopeView) PutChunks(typ *Type, chunks [][]Load, apply Apply) {
	n := checkChunks(typ, chunks)
	locked := v.s.lock(true)
	defer v.s.unlock(locked)
	if v.s.ended.Load() {
		return
	}
	m := v.mapOf(typ, n)
	var o outcome
	for _, loads := range chunks {
		for i := range loads {
			if loads[i].Canonical {
				o.hits++
			} else {
				loads[i].Obj = typ.box(v.put(m, typ, &loads[i], apply, &o))
			}
		}
	}
	o.count(&v.d.stats.scoped)
	m.count.add(int64(o.misses))
}

// mapOf returns the scope's map of typ, made with room for n entries. The
// scope is write-locked.
func (v scopeView) mapOf(typ *Type, n int) *scopeMap {
	s := v.s
	if m := s.find(v.d, typ); m != nil {
		return m
	}
	if s.led == nil {
		s.led = new(ledger)
		// The cleanup takes the scope's entries off the gauges if the
		// scope is dropped before it ends.
		runtime.AddCleanup(s, (*ledger).release, s.led)
	}
	m := &scopeMap{db: v.d, typ: typ, table: v.d.Table(typ.Table), hint: n, count: s.led.item(v.d)}
	maps := append(slices.Clone(s.mapList()), m)
	s.maps.Store(&maps)
	return m
}

// put offers l to m. The scope is write-locked.
func (v scopeView) put(m *scopeMap, typ *Type, l *Load, apply Apply, o *outcome) unsafe.Pointer {
	lobj := typ.ptr(l.Obj)
	e, ok := m.get(l.Key)
	if !ok {
		m.set(l.Key, newScopeEntry(lobj, l.Epoch, l.Partial))
		o.misses++ // a new entry: counted by the caller
		return lobj
	}
	st := v.state(m.table, typ, &e, l.Key)
	if keep(st, l) {
		o.hits++
		return e.obj
	}
	o.refreshes++
	// Refresh in place: same pointer, temporary fields kept.
	if apply != nil {
		apply(typ.box(e.obj), l.Obj)
	}
	// A partial row over a complete but expired object leaves its other
	// columns stale: the object stays partial until a complete row arrives.
	e = newScopeEntry(e.obj, l.Epoch, l.Partial && (e.partial() || st != Fresh))
	m.set(l.Key, e)
	return e.obj
}

func (v scopeView) Remove(typ *Type, key any, o any) bool {
	obj, ok := typ.match(o)
	if !ok {
		return false
	}
	locked := v.s.lock(false)
	defer v.s.unlock(locked)
	if !locked {
		return false
	}
	m := v.s.find(v.d, typ)
	if m == nil {
		return false
	}
	e, ok := m.get(key)
	if !ok || (obj != nil && e.obj != obj) {
		return false
	}
	m.del(key)
	m.count.add(-1)
	return true
}
