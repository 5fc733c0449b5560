package cache

import (
	"runtime"
	"strings"
	"testing"
)

// TestObjectsKeepTheirType: what a map gives back is the object stored, as
// the pointer type it was stored as, from every way out (Put, Lookup, the
// typed lookups, a Cursor, PutAll, Drain).
func TestObjectsKeepTheirType(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "obj", Table: "kinds"}
	s := NewScope()
	for _, m := range []Map{d.Shared(), s.In(d)} {
		o := &obj{id: 7, name: "seven"}
		if got := m.Put(typ, &Load{Key: int64(7), Obj: o, Epoch: d.Now()}, nil); got != any(o) {
			t.Fatalf("Put = %v; want %p", got, o)
		}
		p, st := m.Lookup(typ, int64(7))
		if q, ok := p.(*obj); !ok || q != o || st != Fresh {
			t.Errorf("Lookup = %T %v %v; want %p Fresh", p, p, st, o)
		}
		if p, _ := m.Cursor(typ).Lookup(int64(7)); p != any(o) {
			t.Errorf("Cursor.Lookup = %v; want %p", p, o)
		}
		loads := []Load{{Key: int64(8), Obj: &obj{id: 8}, Epoch: d.Now()}, {Key: int64(7), Obj: &obj{id: 7}, Epoch: d.Now()}}
		m.PutAll(typ, loads, nil)
		if loads[1].Obj != any(o) || loads[0].Obj.(*obj).id != 8 {
			t.Errorf("PutAll left %v, %v; want a new object 8 and the canonical 7", loads[0].Obj, loads[1].Obj)
		}
		runtime.KeepAlive(loads)
		runtime.KeepAlive(o)
	}
	p, _ := d.LookupSharedInt(typ, 7)
	q, _ := s.LookupInt(d, typ, 7)
	if p.(*obj).id != 7 || q.(*obj).id != 7 {
		t.Errorf("typed lookups gave %v and %v", p, q)
	}
	items := s.Drain(d)
	if len(items) != 2 {
		t.Fatalf("Drain gave %d items; want 2", len(items))
	}
	for _, it := range items {
		if o, ok := it.Obj.(*obj); !ok || any(o.id) != it.Key {
			t.Errorf("Drain item %v holds %v", it.Key, it.Obj)
		}
	}
}

// TestAbsentIsNil: a key with no entry gives a nil interface, not a typed
// nil pointer.
func TestAbsentIsNil(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "obj", Table: "absent"}
	o, l := load(1, d.Now())
	d.Shared().Put(typ, l, nil)
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		if p, st := m.Lookup(typ, int64(2)); p != nil || st != Absent {
			t.Errorf("Lookup of an absent key = %#v %v; want nil Absent", p, st)
		}
	}
	if p, st := d.LookupSharedString(typ, "x"); p != nil || st != Absent {
		t.Errorf("LookupSharedString = %#v %v; want nil Absent", p, st)
	}
	runtime.KeepAlive(o)
}

// TestBadObjectsPanic: an object that is not a non-nil pointer of the
// Type's Go type is refused before it is stored, with a message that names
// the Type and both Go types; the map is unchanged.
func TestBadObjectsPanic(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "obj", Table: "bad"}
	o, l := load(1, d.Now())
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		m.Put(typ, l, nil)
		for _, c := range []struct {
			obj  any
			want string
		}{
			{&other{id: 2}, "is a *cache.other; its objects are *cache.obj"},
			{obj{id: 2}, "is a cache.obj, not a pointer"},
			{(*obj)(nil), "is a nil *cache.obj"},
			{nil, "not a pointer"},
		} {
			msg := mustPanic(t, func() { m.Put(typ, &Load{Key: int64(2), Obj: c.obj, Epoch: d.Now()}, nil) })
			if !strings.HasPrefix(msg, "cache: an object of obj ") || !strings.Contains(msg, c.want) {
				t.Errorf("Put(%T): panic %q; want it to name obj and say %q", c.obj, msg, c.want)
			}
			mustPanic(t, func() { m.PutAll(typ, []Load{{Key: int64(2), Obj: c.obj, Epoch: d.Now()}}, nil) })
			if p, st := m.Lookup(typ, int64(2)); p != nil || st != Absent {
				t.Errorf("a refused %T was stored", c.obj)
			}
		}
	}
	runtime.KeepAlive(o)
}

// TestTypeFixedByFirstObject: a fresh Type takes the Go type of its first
// object, whichever map stores it.
func TestTypeFixedByFirstObject(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "other", Table: "first"}
	s := NewScope()
	a := &other{id: 1}
	s.In(d).Put(typ, &Load{Key: int64(1), Obj: a, Epoch: d.Now()}, nil)
	b := &other{id: 2}
	d.Shared().Put(typ, &Load{Key: int64(2), Obj: b, Epoch: d.Now()}, nil)
	mustPanic(t, func() { d.Shared().Put(typ, &Load{Key: int64(3), Obj: &obj{}, Epoch: d.Now()}, nil) })
	if p, _ := d.Shared().Lookup(typ, int64(2)); p.(*other) != b {
		t.Errorf("Lookup = %v; want %p", p, b)
	}
	runtime.KeepAlive(a)
}

// TestRemoveMatchesObject: Remove with an object removes the entry only
// while that object is its object; an object of another type, or a nil
// pointer, is never the entry's object.
func TestRemoveMatchesObject(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "obj", Table: "remove"}
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		o, l := load(1, d.Now())
		m.Put(typ, l, nil)
		for _, wrong := range []any{&obj{id: 1}, &other{id: 1}, (*obj)(nil)} {
			if m.Remove(typ, int64(1), wrong) {
				t.Errorf("Remove with %T %v removed another object's entry", wrong, wrong)
			}
		}
		if !m.Remove(typ, int64(1), o) {
			t.Error("Remove with the entry's object did not remove it")
		}
		m.Put(typ, l, nil)
		if !m.Remove(typ, int64(1), nil) {
			t.Error("Remove with no object did not remove the entry")
		}
		if m.Remove(typ, int64(1), nil) {
			t.Error("Remove of an absent key said it removed something")
		}
		runtime.KeepAlive(o)
	}
}

// TestApplyAndCopyGetObjects: a refresh hands Apply, New and Copy objects
// of the Type's Go type: in place in a scope, into a new object (with the
// old one's temporary fields) in the shared map.
func TestApplyAndCopyGetObjects(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "obj", Table: "apply",
		New:  func() any { return new(obj) },
		Copy: func(dst, src any) { dst.(*obj).pad = src.(*obj).pad },
	}
	apply := func(dst, src any) { dst.(*obj).name = src.(*obj).name }
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		o := &obj{id: 1, name: "old", pad: [4]int64{9}}
		m.Put(typ, &Load{Key: int64(1), Obj: o, Epoch: d.Now()}, apply)
		d.ExpireAll()
		got := m.Put(typ, &Load{Key: int64(1), Obj: &obj{id: 1, name: "new"}, Epoch: d.Now()}, apply).(*obj)
		if got.name != "new" || got.pad[0] != 9 {
			t.Errorf("scoped %v: refreshed object %+v; want name new and the old temporary field", m.Scoped(), got)
		}
		if m.Scoped() != (got == o) {
			t.Errorf("scoped %v: refreshed in place %v", m.Scoped(), got == o)
		}
		runtime.KeepAlive(o)
	}
}
