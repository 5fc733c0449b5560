package cache

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// TestFastPathsAgreeWithGeneral: the typed lookups' hit paths (sharedFound,
// scopeFound, DB.clean) give the state and object that the general paths
// (found, scopeHit) give, for int64 and string keys, strong and weak
// maps, complete and partial entries, after every kind of expiry, a pause,
// a lease (valid and past), an age floor, the strong-entry bound, an
// expiry in the scope alone, a flush of the scope and its end, a weak
// entry whose object was collected.
func TestFastPathsAgreeWithGeneral(t *testing.T) {
	type change struct {
		name string
		do   func(d *DB, s *Scope, types []*Type, keys [2]any, epoch uint64)
	}
	changes := []change{
		{"none", func(*DB, *Scope, []*Type, [2]any, uint64) {}},
		{"ExpireAll", func(d *DB, _ *Scope, _ []*Type, _ [2]any, _ uint64) { d.ExpireAll() }},
		{"ExpireTable", func(d *DB, _ *Scope, _ []*Type, _ [2]any, _ uint64) { d.ExpireTable("agree") }},
		{"ExpireTable other", func(d *DB, _ *Scope, _ []*Type, _ [2]any, _ uint64) { d.ExpireTable("other") }},
		{"ExpireKeys", func(d *DB, _ *Scope, _ []*Type, k [2]any, _ uint64) { d.ExpireKeys("agree", k[0]) }},
		{"Pause", func(d *DB, _ *Scope, _ []*Type, _ [2]any, _ uint64) { d.addPause(1) }},
		{"lease valid", func(d *DB, _ *Scope, _ []*Type, _ [2]any, _ uint64) { d.SetLease(Mono() + 1e12) }},
		{"lease past", func(d *DB, _ *Scope, _ []*Type, _ [2]any, _ uint64) { d.SetLease(1) }},
		{"age floor", func(d *DB, _ *Scope, _ []*Type, _ [2]any, e uint64) { d.raiseAgeFloor(e + 1) }},
		{"age floor equal", func(d *DB, _ *Scope, _ []*Type, _ [2]any, e uint64) { d.raiseAgeFloor(e) }},
		{"bound", func(d *DB, _ *Scope, _ []*Type, _ [2]any, _ uint64) { d.SetMaxStrong(100) }},
		{"ExpireLoadedSince", func(d *DB, s *Scope, _ []*Type, _ [2]any, e uint64) { s.ExpireLoadedSince(d, e) }},
		{"scope Flush", func(d *DB, s *Scope, _ []*Type, _ [2]any, _ uint64) { s.Flush(d, nil) }},
		{"scope End", func(d *DB, s *Scope, _ []*Type, _ [2]any, _ uint64) { s.End() }},
		{"collected", nil}, // the weak map's objects are dropped and collected
		{"Remove", func(d *DB, s *Scope, types []*Type, k [2]any, _ uint64) {
			for _, typ := range types {
				d.Shared().Remove(typ, k[0], nil)
				s.In(d).Remove(typ, k[0], nil)
			}
		}},
	}
	for _, keys := range [][2]any{{int64(7), int64(8)}, {"seven", "eight"}} {
		for _, partial := range []bool{false, true} {
			for _, c := range changes {
				name := fmt.Sprintf("%T/partial=%v/%s", keys[0], partial, c.name)
				t.Run(name, func(t *testing.T) {
					d := NewDB(t.Name())
					s := NewScope()
					// Types of this test's own: a type's first database
					// is the one its typed hit paths serve
					// (LookupSharedIntPtr), and a type shared by the
					// subtests would leave every later one to the
					// general path.
					agreeTypes := newAgreeTypes()
					var held []*obj
					d.Tick()
					epoch := d.Now()
					for _, typ := range agreeTypes {
						for _, k := range keys {
							o := &obj{}
							held = append(held, o)
							d.Shared().Put(typ, &Load{Key: k, Obj: o, Epoch: epoch, Partial: partial}, nil)
							s.In(d).Put(typ, &Load{Key: k, Obj: o, Epoch: epoch, Partial: partial}, nil)
						}
					}
					d.Tick()
					if c.do != nil {
						c.do(d, s, agreeTypes, keys, epoch)
					} else {
						s.End() // the scope held the objects strongly
						held = nil
						runtime.GC()
						runtime.GC()
					}
					for _, typ := range agreeTypes {
						for _, k := range keys {
							// The general paths first: a strong entry's
							// touch changes what the hit path sees.
							m := d.sharedMap(typ)
							e, ok := m.get(k)
							gp, gst := found(m, e, ok, k)
							sm, se, sok := s.getLocked(d, typ, nil, k)
							var sgst State = Absent
							var sgo any
							if sm != nil {
								sgo, sgst = scopeHit(s, d, sm, typ, se, sok, k)
							}
							fo, fst, sfo, sfst := typedLookups(d, s, typ, k)
							if c.do == nil && !typ.Strong && fst != Absent {
								t.Errorf("%s shared %v: %v after its object was collected; want Absent", typ.Name, k, fst)
							}
							if fst != gst || fo != typ.box(gp) {
								t.Errorf("%s shared %v: hit path %v %p; general %v %p", typ.Name, k, fst, fo, gst, typ.box(gp))
							}
							if ik, ok := k.(int64); ok {
								if d.firstMap(typ) == nil {
									t.Fatalf("%s: the typed hit path is not reached (the type's first database is another)", typ.Name)
								}
								if pp, pst := d.LookupSharedIntPtr(typ, ik); pst != gst || typ.box(pp) != typ.box(gp) {
									t.Errorf("%s shared %v: LookupSharedIntPtr %v %p; general %v %p", typ.Name, k, pst, pp, gst, gp)
								}
							}
							if sfst != sgst || sfo != sgo {
								t.Errorf("%s scope %v: hit path %v %p; general %v %p", typ.Name, k, sfst, sfo, sgst, sgo)
							}
						}
					}
					runtime.KeepAlive(held)
				})
			}
		}
	}
}

func newAgreeTypes() []*Type {
	return []*Type{
		{Name: "agree strong", Table: "agree", Strong: true},
		{Name: "agree weak", Table: "agree"},
	}
}

// TestLookupSharedIntPtrWaitsOnWriter: a slot whose sequence is odd (a
// writer between its stores of key, object and meta word) is not served
// by the typed hit path, which would return what the writer has stored so
// far; the lookup waits for the writer (the general path's seqlock). The
// writer here is the test, which sets the sequence odd and stores another
// object, then finishes the write.
func TestLookupSharedIntPtrWaitsOnWriter(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "seq strong", Table: "seq", Strong: true}
	a, b := &obj{id: 7}, &obj{id: 8}
	d.Shared().Put(typ, &Load{Key: int64(7), Obj: a, Epoch: d.Now()}, nil)
	m := d.firstMap(typ)
	if m == nil {
		t.Fatal("the typed hit path is not reached")
	}
	tab := m.ints.shard(ihash(7)).tab.Load()
	sl := &tab.slots[tab.home(ihash(7))]
	if sl.key != 7 {
		t.Fatal("key 7 is not in its home slot")
	}
	m1 := sl.meta.Load()
	sl.meta.Store(m1 + 1) // odd: a write under way
	atomic.StorePointer(&sl.ref, unsafe.Pointer(b))
	got := make(chan unsafe.Pointer, 1)
	go func() {
		p, _ := d.LookupSharedIntPtr(typ, 7)
		got <- p
	}()
	select {
	case p := <-got:
		t.Fatalf("the lookup returned %p during a write of the slot; want it to wait", p)
	case <-time.After(20 * time.Millisecond): // waiting, as it should (a slow machine only waits longer)
	}
	atomic.StorePointer(&sl.ref, unsafe.Pointer(a))
	sl.meta.Store(m1 + 2) // the write ends: even again
	if p := <-got; p != unsafe.Pointer(a) {
		t.Fatalf("after the write: %p; want the object %p", p, a)
	}
}
