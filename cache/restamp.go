package cache

import (
	"sync/atomic"
	"unsafe"
)

// Restamping. An entry's epoch is the clock when the query that loaded it
// began, and a hit passes two words (clean): the database's hit floor and
// its table's. An expiry of some keys of a table raises the table's floor
// past every entry loaded before it, and each hit of those entries then
// goes to the slow check (freshOf), which reads the table's expired keys:
// after one write to a table, every older entry's hit cost 3-4x a clean one
// and, for keys that need normalising, allocated, until the entry was
// loaded again, which a hit never does. A shared entry that the slow check
// finds fresh is therefore stamped anew (restampAt, restamp): its epoch
// becomes c, the clock read before the check, and its next hits pass the
// floors until the next expiry of its table.
//
// The new epoch says what a load's says: every expiry that concerns the
// entry has an epoch above c, or was applied before the entry's data were
// read. It holds because of DB.expiring, which counts each expiry from
// before it takes its epoch until its records and floors are written. The
// lookup reads c, then sees no expiry under way, then checks: an expiry
// with an epoch up to c had taken it, and so was counted, before the
// lookup read c; seen finished afterwards, its records were written before
// the check read them, and the check found none newer than the entry's
// epoch. An expiry with a larger epoch raises a floor above c, as it would
// for an entry loaded at c. With an expiry under way the entry is not
// restamped (the hit is still served: the check is the same as before).
//
// Not restamped:
//   - under a maximum age (MaxAge counts an entry's age from its epoch);
//   - an entry whose table has no expired key newer than it: its slow
//     check reads no key (a lease, a pause or a bound sent it there), and
//     a new epoch would spare it nothing;
//   - when the key's shard is locked by a writer: the lookup does not wait
//     (computeIf), and a later hit restamps.
//
// A scope restamps its entries of int64 and string keys in the same way
// (restampScoped), if its writers' mutex is free; its entries of other
// keys, read under a stripe's lock, are not restamped.

// restampAt returns the epoch with which to restamp e, the slot that a
// lookup of m found (ok), if its slow check, which must come after this
// call, finds it fresh; false when it is not to be restamped.
func (m *sharedMap) restampAt(e slot, ok bool) (uint64, bool) {
	if !ok {
		return 0, false
	}
	return m.db.restampAt(m.table, e.epoch(), true)
}

// restampAt returns the epoch with which to restamp an entry of table t
// loaded at epoch, if its slow check, which must come after this call,
// finds it fresh; false when it is not to be restamped. shared: the entry
// is a shared map's, to which a maximum age applies.
func (d *DB) restampAt(t *Table, epoch uint64, shared bool) (uint64, bool) {
	if epoch >= t.keyMax.Load() {
		return 0, false
	}
	c := d.clock.Load()
	if d.expiring.Load() != 0 || shared && d.maxAge.Load() != 0 || c <= epoch {
		return 0, false
	}
	return c, true
}

// restamped is the compute function of a restamp of slot e to epoch c: it
// stores the slot anew with epoch c if it still holds e's object at e's
// epoch (a load, a removal or another restamp may have come first), with
// its own flags (a lookup may have marked it referenced since).
func restamped(e slot, c uint64) func(cur slot, ok bool) (slot, op) {
	return func(cur slot, ok bool) (slot, op) {
		if !ok || cur.ref != e.ref || cur.epoch() != e.epoch() {
			return cur, opKeep
		}
		cur.meta = withEpoch(cur.meta, c)
		return cur, opStore
	}
}

// restamp restamps the slot e of key k (hash h) in s to epoch c, unless
// its shard is locked.
func (s *kshards[K]) restamp(h uint64, k K, e slot, c uint64) {
	s.computeIf(h, k, restamped(e, c), true)
}

// restamp restamps the slot e of key to epoch c, unless its shard is
// locked.
func (m *sharedMap) restamp(key any, e slot, c uint64) {
	m.computeIf(key, restamped(e, c), true)
}

// foundRestamped is found for a lookup that may restamp the slot it found
// (restampAt): put is how it restamps.
func foundRestamped[K comparable](m *sharedMap, e slot, ok bool, k K, put func(e slot, c uint64)) (unsafe.Pointer, State) {
	c, again := m.restampAt(e, ok)
	p, st := found(m, e, ok, k)
	if again && st == Fresh {
		put(e, c)
	}
	return p, st
}

// restamp restamps the entry e of key k of m, a map of s, to epoch c, if
// s's writers' mutex is free and k is an int64 or a string (the tables
// that readers read with no lock, and writers write under that mutex).
func restampScoped[K comparable](s *Scope, m *scopeMap, k K, e scopeEntry, c uint64) {
	if !s.mu.TryLock() {
		return
	}
	defer s.mu.Unlock()
	if m.dead.Load() || s.ended.Load() {
		return
	}
	switch x := any(k).(type) {
	case int64:
		restampIn(&m.ints, ihash(x), x, e, c)
	case string:
		sk := strKey(x)
		restampIn(&m.strs, sk.h, sk, e, c)
	}
}

// restampIn restamps the entry e of key k (hash h) in the table *p of a
// scope to epoch c, if it still holds e's object at e's epoch and is
// neither partial nor expired. The scope's mutex held.
func restampIn[K comparable](p *atomic.Pointer[ktab[K]], h uint64, k K, e scopeEntry, c uint64) {
	r, meta, ok := p.Load().get(h, k)
	cur := scopeEntry{obj: r, meta: meta}
	if !ok || cur.obj != e.obj || cur.epoch() != e.epoch() || cur.meta&(scopePartial|scopeExpired) != 0 {
		return
	}
	putItab(p, h, k, cur.obj, withEpoch(cur.meta, c))
}
