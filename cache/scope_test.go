package cache

import (
	"fmt"
	"runtime"
	"testing"
)

func TestScopeRefreshInPlace(t *testing.T) {
	d := newTestDB(t)
	m := NewScope().In(d)
	o, l := load(1, d.Now())
	o.name = "old"
	m.Put(userType, l, nil)
	d.ExpireAll()
	n, l2 := load(1, d.Now())
	n.name = "new"
	got := m.Put(userType, l2, func(dst, src any) { dst.(*obj).name = src.(*obj).name })
	if got != o || o.name != "new" {
		t.Errorf("scope refresh: got %p name %q; want the same object, renamed", got, o.name)
	}
	if _, st := m.Lookup(userType, int64(1)); st != Fresh {
		t.Error("refreshed entry is not fresh")
	}
}

func TestScopeEnd(t *testing.T) {
	d := newTestDB(t)
	s := NewScope()
	o, l := load(1, d.Now())
	s.In(d).Put(userType, l, nil)
	s.End()
	if s.Len() != 0 {
		t.Error("End left objects")
	}
	o2, l2 := load(2, d.Now())
	s.In(d).Put(userType, l2, nil)
	if s.Len() != 0 {
		t.Error("an ended scope stored an object")
	}
	runtime.KeepAlive(o)
	runtime.KeepAlive(o2)
}

// TestScopeLookupAllocs: a hit in a scope's map or the shared map
// allocates nothing, for integer and string keys of any value, through
// Lookup with the key already in an interface and through the typed
// lookups.
func TestScopeLookupAllocs(t *testing.T) {
	d := newTestDB(t)
	s := NewScope()
	ti := &Type{Name: "int", Table: "t"}
	ts := &Type{Name: "str", Table: "t"}
	objs := make([]obj, 1000)
	skeys := make([]string, len(objs))
	for i := range objs {
		objs[i].id = int64(i + 1)
		skeys[i] = fmt.Sprintf("key-%06d", i+1)
		for _, m := range []Map{s.In(d), d.Shared()} {
			m.Put(ti, &Load{Key: int64(i + 1), Obj: &objs[i], Epoch: d.Now()}, nil)
			m.Put(ts, &Load{Key: skeys[i], Obj: &objs[i], Epoch: d.Now()}, nil)
		}
	}
	var ik, sk any = int64(777), skeys[776]
	for _, c := range []struct {
		name   string
		lookup func() (any, State)
	}{
		{"scope int", func() (any, State) { return s.Lookup(d, ti, ik) }},
		{"scope string", func() (any, State) { return s.Lookup(d, ts, sk) }},
		{"scope LookupInt", func() (any, State) { return s.LookupInt(d, ti, 777) }},
		{"scope LookupString", func() (any, State) { return s.LookupString(d, ts, skeys[776]) }},
		{"shared int", func() (any, State) { return d.LookupShared(ti, ik) }},
		{"shared LookupSharedInt", func() (any, State) { return d.LookupSharedInt(ti, 777) }},
		{"shared LookupSharedString", func() (any, State) { return d.LookupSharedString(ts, skeys[776]) }},
	} {
		if a := testing.AllocsPerRun(1000, func() {
			if p, st := c.lookup(); st != Fresh || p.(*obj).id != 777 {
				t.Fatal("miss")
			}
		}); a != 0 {
			t.Errorf("%s: %v allocations per lookup; want 0", c.name, a)
		}
	}
	runtime.KeepAlive(objs)
}

// TestScopeDBsFlushAndDrain: a scope knows the databases it holds objects
// of; Flush forgets one type, one database or all; Drain hands out one
// database's objects and ends the scope.
func TestScopeDBsFlushAndDrain(t *testing.T) {
	a, b := NewDB("scope-a"), NewDB("scope-b")
	s := NewScope()
	if len(s.DBs()) != 0 || s.Ended() {
		t.Fatal("a new scope holds databases or has ended")
	}
	var keep []*obj
	put := func(d *DB, typ *Type, k int64) {
		o, l := load(k, d.Now())
		keep = append(keep, o)
		s.In(d).Put(typ, l, nil)
	}
	put(a, userType, 1)
	put(a, strongType, 1)
	put(b, userType, 1)
	put(b, userType, 2)
	if dbs := s.DBs(); len(dbs) != 2 || s.Len() != 4 {
		t.Fatalf("DBs %v, Len %d; want 2 databases, 4 objects", dbs, s.Len())
	}
	s.Flush(a, strongType)
	if p, _ := s.Lookup(a, strongType, int64(1)); p != nil || s.Len() != 3 {
		t.Errorf("Flush of one type kept it (Len %d)", s.Len())
	}
	s.Flush(a, nil)
	if dbs := s.DBs(); len(dbs) != 1 || dbs[0] != b {
		t.Errorf("after Flush of a database: DBs %v; want only b", dbs)
	}
	items := s.Drain(b)
	if len(items) != 2 || !s.Ended() || s.Len() != 0 {
		t.Errorf("Drain: %d items, ended %v, Len %d; want 2, true, 0", len(items), s.Ended(), s.Len())
	}
	runtime.KeepAlive(keep)
}

// TestExpireLoadedSince: a rollback expires, in its scope only, what was
// loaded from an epoch on; older entries and other maps stay fresh.
func TestExpireLoadedSince(t *testing.T) {
	d := newTestDB(t)
	s := NewScope()
	o1, l1 := load(1, d.Now())
	s.In(d).Put(userType, l1, nil)
	since := d.Tick()
	o2, l2 := load(2, d.Now())
	s.In(d).Put(userType, l2, nil)
	d.Shared().Put(userType, l2, nil)
	s.ExpireLoadedSince(d, since)
	st := func(m Map, k int64) State { _, st := m.Lookup(userType, k); return st }
	if st(s.In(d), 1) != Fresh || st(s.In(d), 2) != Expired || st(d.Shared(), 2) != Fresh {
		t.Errorf("after ExpireLoadedSince: scope 1 %v, scope 2 %v, shared 2 %v; want Fresh, Expired, Fresh",
			st(s.In(d), 1), st(s.In(d), 2), st(d.Shared(), 2))
	}
	runtime.KeepAlive(o1)
	runtime.KeepAlive(o2)
}
