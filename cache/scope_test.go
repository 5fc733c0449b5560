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
