package cache

import (
	"runtime"
	"testing"
	"time"
)

// Expiry by key, table and database; a load that began before a write
// finished is never fresh.
func TestExpiry(t *testing.T) {
	d := newTestDB(t)
	other := &Type{Name: "other", Table: "USERS"} // same table, another Go type
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		keep := []*obj{}
		put := func(typ *Type, k int64, epoch uint64) {
			o, l := load(k, epoch)
			keep = append(keep, o)
			m.Put(typ, l, func(dst, src any) { *dst.(*obj) = *src.(*obj) })
		}
		state := func(typ *Type, k int64) State { _, st := m.Lookup(typ, k); return st }
		put(userType, 1, d.Now())
		put(userType, 2, d.Now())
		put(other, 1, d.Now())
		d.ExpireKeys("users", int64(1))
		if state(userType, 1) != Expired || state(other, 1) != Expired || state(userType, 2) != Fresh {
			t.Errorf("%T: key expiry: got %v %v %v", m, state(userType, 1), state(other, 1), state(userType, 2))
		}
		// The race: a query begins, a write finishes, the rows arrive.
		began := d.Now()
		d.ExpireKeys("users", int64(3))
		put(userType, 3, began)
		if state(userType, 3) != Expired {
			t.Errorf("%T: a row read before a write finished is fresh", m)
		}
		put(userType, 4, d.Now())
		d.ExpireTable("users")
		if state(userType, 4) != Expired || state(other, 1) != Expired {
			t.Errorf("%T: table expiry missed an entry", m)
		}
		put(userType, 5, d.Now())
		d.ExpireAll()
		if state(userType, 5) != Expired {
			t.Errorf("%T: database expiry missed an entry", m)
		}
		// Reloading after expiry makes the entry fresh again.
		put(userType, 5, d.Now())
		if state(userType, 5) != Fresh {
			t.Errorf("%T: reload did not refresh", m)
		}
		runtime.KeepAlive(keep)
	}
}

// Two writes of one key whose expiries are recorded out of order: the
// first writer took its epoch, then was held up (descheduled) before it
// recorded it, while a load began and the second write expired the key.
// The older epoch recorded last must not make that load fresh again (it
// did: a change log's message recorded after a local write's expiry
// served the row as it was before the local write,
// TestChangeLogModel/SQLite under load).
func TestKeyExpiryNeverGoesBack(t *testing.T) {
	d := newTestDB(t)
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		late := d.clock.Add(1)   // the first write's expiry takes its epoch
		o, l := load(1, d.Now()) // a load begins, and reads the row as the first write left it
		d.ExpireKeys("users", int64(1))
		m.Put(userType, l, nil) // the second write finished before the load was stored
		if _, st := m.Lookup(userType, int64(1)); st != Expired {
			t.Fatalf("%T: a row read before the second write finished is %v", m, st)
		}
		d.recordKeys(d.Table("users"), []any{int64(1)}, late) // the first write records its epoch
		if _, st := m.Lookup(userType, int64(1)); st != Expired {
			t.Errorf("%T: an older expiry recorded last left the entry in state %d, want Expired", m, st)
		}
		runtime.KeepAlive(o)
	}
}

// Written keys stay bounded: past the limit they collapse into a
// table-wide expiry, which still covers every key.
func TestKeyRecordsBounded(t *testing.T) {
	d := newTestDB(t)
	d.keyLimit = 100
	m := NewScope().In(d)
	o, l := load(1, d.Now())
	m.Put(userType, l, nil)
	for k := range int64(1000) {
		d.ExpireKeys("users", k+1000)
	}
	keys, collapses := d.Table("users").KeyStats()
	if keys > 100 || collapses == 0 {
		t.Errorf("got %d keys, %d collapses; want ≤ 100 keys and some collapses", keys, collapses)
	}
	if _, st := m.Lookup(userType, int64(1)); st != Expired {
		t.Error("a collapse lost an expiry") // key 1 was loaded before the writes: collapsing widens to it
	}
	runtime.KeepAlive(o)
}

// The memory that records written keys stays bounded however many keys are
// written: measured with runtime.MemStats over a million writes.
func TestKeyRecordsMemory(t *testing.T) {
	d := newTestDB(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for k := range int64(1_000_000) {
		d.ExpireKeys("big", k)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	keys, collapses := d.Table("big").KeyStats()
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("1,000,000 written keys: %d remembered, %d collapses, heap grew %d KiB", keys, collapses, grown/1024)
	if keys > DefaultKeyLimit {
		t.Errorf("%d keys remembered; want at most %d", keys, DefaultKeyLimit)
	}
	if grown > 4<<20 {
		t.Errorf("heap grew %d bytes; want a bounded record", grown)
	}
}

func TestPartialNotServed(t *testing.T) {
	d := newTestDB(t)
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		o, l := load(1, d.Now())
		l.Partial = true
		m.Put(userType, l, nil)
		if _, st := m.Lookup(userType, int64(1)); st != Partial {
			t.Errorf("%T: partial entry state %v", m, st)
		}
		f, l2 := load(1, d.Now())
		got := m.Put(userType, l2, func(dst, src any) {})
		if _, st := m.Lookup(userType, int64(1)); st != Fresh {
			t.Errorf("%T: a complete row did not complete the entry: %v", m, st)
		}
		runtime.KeepAlive(o)
		runtime.KeepAlive(f)
		_ = got
	}
}

func TestMaxAge(t *testing.T) {
	d := newTestDB(t)
	d.SetMaxAge(40 * time.Millisecond)
	m := d.Shared()
	o, l := load(1, d.Now())
	m.Put(strongType, l, nil)
	if _, st := m.Lookup(strongType, int64(1)); st != Fresh {
		t.Fatalf("a new entry is %v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, st := m.Lookup(strongType, int64(1)); st == Expired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry never expired by age")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := d.Counters(); c.ExpiredAge == 0 {
		t.Error("age expiries not counted")
	}
	// A new load is fresh again; scopes are not aged.
	_, l = load(1, d.Now())
	if p := m.Put(strongType, l, nil); p == any(o) {
		t.Error("the aged object was kept")
	}
	if _, st := m.Lookup(strongType, int64(1)); st != Fresh {
		t.Errorf("reloaded entry is %v", st)
	}
	s := NewScope()
	_, l = load(2, d.Now())
	s.In(d).Put(strongType, l, nil)
	time.Sleep(100 * time.Millisecond)
	if _, st := s.In(d).Lookup(strongType, int64(2)); st != Fresh {
		t.Errorf("scope entry is %v after the max age; scopes are not aged", st)
	}
}

func TestPauseResume(t *testing.T) {
	d := newTestDB(t)
	m := d.Shared()
	_, l := load(1, d.Now())
	m.Put(strongType, l, nil)
	d.Pause()
	_, l2 := load(2, d.Now())
	m.Put(strongType, l2, nil)
	for k := range int64(3) {
		if _, st := m.Lookup(strongType, k); st == Fresh {
			t.Errorf("key %d fresh while paused", k)
		}
	}
	d.Resume()
	if _, st := m.Lookup(strongType, int64(2)); st != Absent {
		t.Errorf("a load during the pause is %v after it; want Absent (not stored)", st)
	}
	if _, st := m.Lookup(strongType, int64(1)); st != Expired {
		t.Errorf("a load before the pause is %v after it; want Expired", st)
	}
	_, l3 := load(3, d.Now())
	m.Put(strongType, l3, nil)
	if _, st := m.Lookup(strongType, int64(3)); st != Fresh {
		t.Errorf("a load after the pause is %v", st)
	}
}

// TestLease: with a lease set, entries are fresh until its deadline passes
// (by Mono's clock), and fresh again once a later lease is set; 0 removes
// the lease.
func TestLease(t *testing.T) {
	d := newTestDB(t)
	o, l := load(1, d.Now())
	d.Shared().Put(userType, l, nil)
	if d.Lease() != 0 || !d.LeaseValid() {
		t.Fatalf("a new database has lease %d, valid %v; want 0, true", d.Lease(), d.LeaseValid())
	}
	d.SetLease(Mono() + int64(time.Hour))
	if _, st := d.Shared().Lookup(userType, int64(1)); st != Fresh || !d.LeaseValid() {
		t.Errorf("within the lease: %v, valid %v; want Fresh, true", st, d.LeaseValid())
	}
	d.SetLease(Mono() - 1)
	if _, st := d.Shared().Lookup(userType, int64(1)); st != Expired || d.LeaseValid() {
		t.Errorf("past the lease: %v, valid %v; want Expired, false", st, d.LeaseValid())
	}
	d.SetLease(0)
	if _, st := d.Shared().Lookup(userType, int64(1)); st != Fresh || d.Lease() != 0 {
		t.Errorf("lease removed: %v, lease %d; want Fresh, 0", st, d.Lease())
	}
	if a, b := Mono(), Mono(); b < a {
		t.Errorf("Mono went back: %d then %d", a, b)
	}
	runtime.KeepAlive(o)
}

// TestTick: Tick advances the clock without expiring anything: a load
// that began before it has a smaller epoch and stays fresh.
func TestTick(t *testing.T) {
	d := newTestDB(t)
	before := d.Now()
	o, l := load(1, before)
	d.Shared().Put(userType, l, nil)
	if e := d.Tick(); e <= before || d.Now() != e {
		t.Errorf("Tick = %d after Now %d; Now is %d", e, before, d.Now())
	}
	if _, st := d.Shared().Lookup(userType, int64(1)); st != Fresh {
		t.Errorf("after Tick: %v; want Fresh", st)
	}
	runtime.KeepAlive(o)
}

// TestPausedAndNoShared: while paused, or with the shared maps off, the
// shared map stores no load (Put gives the load's own object back); scopes
// keep storing. SetShared(false) forgets what the shared map held.
func TestPausedAndNoShared(t *testing.T) {
	d := newTestDB(t)
	s := NewScope()
	o, l := load(1, d.Now())
	d.Shared().Put(userType, l, nil)
	d.SetShared(false)
	if n := d.SharedLen(userType); n != 0 {
		t.Errorf("SetShared(false) kept %d entries", n)
	}
	o2, l2 := load(2, d.Now())
	if got := d.Shared().Put(userType, l2, nil); got != any(o2) || d.SharedLen(userType) != 0 {
		t.Error("the shared map stored a load while off")
	}
	s.In(d).Put(userType, l2, nil)
	if s.Len() != 1 {
		t.Error("a scope stored nothing while the shared maps were off")
	}
	d.SetShared(true)
	d.Pause()
	if !d.Paused() {
		t.Error("Paused is false after Pause")
	}
	d.Shared().Put(userType, l, nil)
	if d.SharedLen(userType) != 0 {
		t.Error("the shared map stored a load while paused")
	}
	d.Resume()
	if d.Paused() {
		t.Error("Paused is true after Resume")
	}
	runtime.KeepAlive(o)
	runtime.KeepAlive(o2)
}

// TestKeyExpiryEveryLookup: a key's expiry reaches every lookup of it, by
// every path (shared and scope, typed and not, a cursor), for int64, int
// and string keys, and leaves the other keys fresh.
func TestKeyExpiryEveryLookup(t *testing.T) {
	for _, keys := range [][2]any{{int64(1), int64(2)}, {"a", "b"}} {
		d := newTestDB(t)
		typ := &Type{Name: "everylookup", Table: "every", Strong: true}
		s := NewScope()
		objs := map[any]*obj{}
		for i, k := range keys {
			o := &obj{id: int64(i)}
			objs[k] = o
			d.Shared().Put(typ, &Load{Key: k, Obj: o, Epoch: d.Now()}, nil)
			s.In(d).Put(typ, &Load{Key: k, Obj: o, Epoch: d.Now()}, nil)
		}
		d.ExpireKeys("every", keys[0])
		lookups := map[string]func(k any) State{
			"LookupShared":  func(k any) State { _, st := d.LookupShared(typ, k); return st },
			"Scope.Lookup":  func(k any) State { _, st := s.Lookup(d, typ, k); return st },
			"shared Cursor": func(k any) State { _, st := d.Shared().Cursor(typ).Lookup(k); return st },
			"scope Cursor":  func(k any) State { _, st := s.In(d).Cursor(typ).Lookup(k); return st },
			"typed": func(k any) State {
				_, st, _, st2 := typedLookups(d, s, typ, k)
				if st != st2 {
					return 99
				}
				return st
			},
		}
		for name, look := range lookups {
			if st := look(keys[0]); st != Expired {
				t.Errorf("%s(%v) after its expiry: %v; want Expired", name, keys[0], st)
			}
			if st := look(keys[1]); st != Fresh {
				t.Errorf("%s(%v), another key: %v; want Fresh", name, keys[1], st)
			}
		}
		runtime.KeepAlive(objs)
	}
}
