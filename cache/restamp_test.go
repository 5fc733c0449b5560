package cache

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// restampKeys are keys of each kind that a shared map keeps apart: int64
// (lock-free table), string (lock-free table) and a struct (locked shards).
var restampKeys = [][2]any{{int64(1), int64(2)}, {"a", "b"}, {pairKey{1, 1}, pairKey{2, 2}}}

// putThenExpireFirst puts an object under each of keys in d's shared map
// of typ and then, the clock ticked, expires keys[0]: keys[1]'s entry is
// then older than an expiry of its table. It returns the objects.
func putThenExpireFirst(d *DB, typ *Type, keys [2]any) []*obj {
	objs := []*obj{{id: 1}, {id: 2}}
	for i, k := range keys {
		d.Shared().Put(typ, &Load{Key: k, Obj: objs[i], Epoch: d.Now()}, nil)
	}
	d.Tick()
	d.ExpireKeys(typ.Table, keys[0])
	return objs
}

// TestRestamp: after an expiry of one key of a table, a lookup of an
// older entry of another key finds it fresh and stamps it with the clock,
// so that its next lookup passes the hit floors; a later expiry of its
// own key expires it. Every kind of key, weak and strong, through each
// lookup.
func TestRestamp(t *testing.T) {
	lookups := map[string]func(d *DB, typ *Type, k any) State{
		"LookupShared": func(d *DB, typ *Type, k any) State { _, st := d.LookupShared(typ, k); return st },
		"Cursor":       func(d *DB, typ *Type, k any) State { _, st := d.Shared().Cursor(typ).Lookup(k); return st },
		"typed": func(d *DB, typ *Type, k any) State {
			switch x := k.(type) {
			case int64:
				_, st := d.LookupSharedIntPtr(typ, x)
				return st
			case string:
				_, st := d.LookupSharedString(typ, x)
				return st
			}
			_, st := d.LookupShared(typ, k)
			return st
		},
	}
	for name, look := range lookups {
		for _, strong := range []bool{false, true} {
			for _, keys := range restampKeys {
				d := newTestDB(t)
				if strong {
					// A bound: a strong entry is clean once a lookup has
					// marked it referenced, a flag the restamp keeps.
					d.SetMaxStrong(1000)
				}
				typ := &Type{Name: "restamp", Table: "restamp", Strong: strong}
				m := d.sharedMap(typ)
				objs := putThenExpireFirst(d, typ, keys)
				e, _ := m.get(keys[1])
				if d.cleanSlot(m, e.meta) {
					t.Fatalf("%s %v: an entry older than an expiry of its table is clean", name, keys[1])
				}
				if st := look(d, typ, keys[1]); st != Fresh {
					t.Fatalf("%s %v, strong %v: %v; want Fresh", name, keys[1], strong, st)
				}
				e, _ = m.get(keys[1])
				if !d.cleanSlot(m, e.meta) || e.epoch() != d.Now() {
					t.Errorf("%s %v, strong %v: epoch %d after the lookup (clock %d); want restamped to the clock and clean", name, keys[1], strong, e.epoch(), d.Now())
				}
				if st := look(d, typ, keys[0]); st != Expired {
					t.Errorf("%s %v, strong %v, the expired key: %v; want Expired", name, keys[0], strong, st)
				}
				d.ExpireKeys("restamp", keys[1])
				if st := look(d, typ, keys[1]); st != Expired {
					t.Errorf("%s %v, strong %v, restamped then expired: %v; want Expired", name, keys[1], strong, st)
				}
				runtime.KeepAlive(objs)
			}
		}
	}
}

// TestRestampNot: no restamp while an expiry is under way, under a maximum
// age, or while the key's shard is locked (the lookup of an int64 or a
// string key does not wait); the entry is served as before.
func TestRestampNot(t *testing.T) {
	for _, keys := range restampKeys {
		cases := map[string]func(d *DB, m *sharedMap) (undo func()){
			"expiry under way": func(d *DB, m *sharedMap) func() {
				d.expiring.Add(1)
				return func() { d.expiring.Add(-1) }
			},
			"maximum age": func(d *DB, m *sharedMap) func() {
				d.maxAge.Store(int64(time.Hour)) // no ager: the floor stays
				return func() { d.maxAge.Store(0) }
			},
			"shard locked": func(d *DB, m *sharedMap) func() {
				var mu interface {
					Lock()
					Unlock()
				}
				switch k := keys[1].(type) {
				case int64:
					mu = &m.ints.shard(ihash(k)).mu
				case string:
					mu = &m.strs.Load().shard(strKey(k).h).mu
				default:
					// A key of another kind is looked up under its
					// shard's read lock: a writer's lock stops it.
					return func() {}
				}
				mu.Lock()
				return mu.Unlock
			},
		}
		for name, set := range cases {
			d := newTestDB(t)
			typ := &Type{Name: "norestamp", Table: "norestamp"}
			m := d.sharedMap(typ)
			objs := putThenExpireFirst(d, typ, keys)
			before, _ := m.get(keys[1])
			undo := set(d, m)
			_, st := d.LookupShared(typ, keys[1])
			undo()
			if st != Fresh {
				t.Errorf("%s, %v: %v; want Fresh", name, keys[1], st)
			}
			if _, other := keys[1].(pairKey); other && name == "shard locked" {
				continue
			}
			if after, _ := m.get(keys[1]); after.meta != before.meta {
				t.Errorf("%s, %v: restamped (epoch %d -> %d)", name, keys[1], before.epoch(), after.epoch())
			}
			runtime.KeepAlive(objs)
		}
	}
}

// TestRestampDuringExpiry: a lookup that comes between an expiry's epoch
// and its records (the window that DB.expiring covers) does not restamp
// the entry past the expiry: once the expiry returns, the entry is
// expired. Fails when restampAt ignores an expiry under way.
func TestRestampDuringExpiry(t *testing.T) {
	for _, keys := range restampKeys {
		d := newTestDB(t)
		typ := &Type{Name: "window", Table: "window"}
		o := &obj{id: 1}
		d.Shared().Put(typ, &Load{Key: keys[0], Obj: o, Epoch: d.Now()}, nil)
		d.Tick()
		d.ExpireKeys("window", keys[1]) // the table's floor passes the entry
		tab := d.Table("window")
		// expireKeys, step by step, with a lookup in its window.
		d.expiring.Add(1)
		w := d.clock.Add(1)
		if _, st := d.LookupShared(typ, keys[0]); st != Fresh {
			t.Fatalf("%v before the expiry is recorded: %v; want Fresh", keys[0], st)
		}
		d.recordKeys(tab, []any{keys[0]}, w)
		d.expiring.Add(-1)
		if _, st := d.LookupShared(typ, keys[0]); st != Expired {
			t.Errorf("%v after its expiry: %v; want Expired", keys[0], st)
		}
		runtime.KeepAlive(o)
	}
}

// TestRestampConcurrent: readers look keys up (restamping them) while a
// writer expires keys, one at a time, and expiries of other keys keep the
// table's floor rising; once the expiry of a key has returned, no lookup
// finds the entry loaded before it fresh. Run with -race.
func TestRestampConcurrent(t *testing.T) {
	const n = 256
	for _, strong := range []bool{false, true} {
		d := newTestDB(t)
		typ := &Type{Name: "restampc", Table: "restampc", Strong: strong}
		objs := make([]*obj, n)
		for i := range objs {
			objs[i] = &obj{id: int64(i)}
			d.Shared().Put(typ, &Load{Key: int64(i), Obj: objs[i], Epoch: d.Now()}, nil)
		}
		var expired [n]atomic.Bool
		var stop atomic.Bool
		var bad atomic.Int64
		var wg sync.WaitGroup
		for r := range 3 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), 1))
				for !stop.Load() {
					k := rng.IntN(n)
					gone := expired[k].Load() // read before the lookup
					var st State
					if r%2 == 0 {
						_, st = d.LookupSharedIntPtr(typ, int64(k))
					} else {
						_, st = d.LookupShared(typ, int64(k))
					}
					if gone && st == Fresh {
						bad.Add(1)
					}
				}
			})
		}
		wg.Go(func() { // expiries of 100 keys past the loaded ones: the floor rises, the keys stay under the table's limit
			for i := int64(0); !stop.Load(); i++ {
				d.ExpireKeys("restampc", n+i%100)
			}
		})
		rng := rand.New(rand.NewPCG(9, 9))
		for _, k := range rng.Perm(n)[:n/2] {
			d.ExpireKeys("restampc", int64(k))
			expired[k].Store(true)
			if _, st := d.LookupSharedIntPtr(typ, int64(k)); st == Fresh {
				bad.Add(1)
			}
			time.Sleep(50 * time.Microsecond)
		}
		stop.Store(true)
		wg.Wait()
		if b := bad.Load(); b != 0 {
			t.Errorf("strong %v: %d lookups found an entry fresh after its key's expiry returned", strong, b)
		}
		for k := range n {
			_, st := d.LookupShared(typ, int64(k))
			if expired[k].Load() == (st == Fresh) {
				t.Errorf("strong %v: key %d, expired %v: %v at the end", strong, k, expired[k].Load(), st)
			}
		}
		runtime.KeepAlive(objs)
	}
}

// TestRestampScope: a scope restamps its entries of int64 and string keys
// as the shared map does (not those of other keys, read under a stripe's
// lock), never while an expiry is under way, and an expiry of the key
// after the restamp expires the entry.
func TestRestampScope(t *testing.T) {
	for _, keys := range restampKeys {
		for _, window := range []bool{false, true} {
			d := newTestDB(t)
			typ := &Type{Name: "restamps", Table: "restamps"}
			s := NewScope()
			objs := []*obj{{id: 1}, {id: 2}}
			for i, k := range keys {
				s.In(d).Put(typ, &Load{Key: k, Obj: objs[i], Epoch: d.Now()}, nil)
			}
			d.Tick()
			d.ExpireKeys("restamps", keys[0])
			w := uint64(0)
			if window { // a lookup between an expiry's epoch and its records
				d.expiring.Add(1)
				w = d.clock.Add(1)
			}
			if _, st := s.Lookup(d, typ, keys[1]); st != Fresh {
				t.Fatalf("%v, window %v: %v; want Fresh", keys[1], window, st)
			}
			m := s.find(d, typ)
			e, _ := m.get(keys[1])
			_, other := keys[1].(pairKey)
			if restamped := e.epoch() != 0; restamped != (!other && !window) {
				t.Errorf("%v, window %v: epoch %d after the lookup; restamped %v, want %v", keys[1], window, e.epoch(), restamped, !other && !window)
			}
			if window {
				d.recordKeys(d.Table("restamps"), []any{keys[1]}, w)
				d.expiring.Add(-1)
			} else {
				d.ExpireKeys("restamps", keys[1])
			}
			if _, st := s.Lookup(d, typ, keys[1]); st != Expired {
				t.Errorf("%v, window %v, after its expiry: %v; want Expired", keys[1], window, st)
			}
			runtime.KeepAlive(objs)
		}
	}
}

// TestLookupsDoNotWaitOnExpiries: while an expiry holds the database's
// lock (a whole-database expiry, a pause, a lease) and the table's (an
// expiry of keys), lookups go on: of a clean entry, of an entry older than
// an expiry of other keys (the slow check, which reads one of the table's
// 16 shards of expired keys under its read lock, and restamps), and of an
// expired one. (A lookup that took either lock would never return.)
func TestLookupsDoNotWaitOnExpiries(t *testing.T) {
	d := newTestDB(t)
	typ := &Type{Name: "nowait", Table: "nowait"}
	objs := []*obj{{id: 1}, {id: 2}, {id: 3}}
	for i, o := range objs {
		d.Shared().Put(typ, &Load{Key: int64(i + 1), Obj: o, Epoch: d.Now()}, nil)
	}
	d.Tick()
	d.ExpireKeys("nowait", int64(3))
	tab := d.Table("nowait")
	d.gmu.Lock()
	tab.mu.Lock()
	var states []State
	for k := int64(1); k <= 3; k++ {
		for range 2 { // the second lookup of key 1 or 2 finds it restamped
			_, st := d.LookupSharedIntPtr(typ, k)
			states = append(states, st)
		}
	}
	tab.mu.Unlock()
	d.gmu.Unlock()
	want := []State{Fresh, Fresh, Fresh, Fresh, Expired, Expired}
	if !slices.Equal(states, want) {
		t.Errorf("lookups under the expiry locks: %v; want %v", states, want)
	}
	runtime.KeepAlive(objs)
}

// TestIntBuckets: the slow check of an int64 key reads its bucket of the
// table's written keys first: a key whose bucket holds no newer write is
// fresh with no lock; a key that shares its bucket with a written key is
// looked up among the written keys, and stays fresh if it was not one.
func TestIntBuckets(t *testing.T) {
	k1 := int64(1)
	k2 := k1 + 1
	for intBucket(k2) != intBucket(k1) {
		k2++
	}
	k3 := k1 + 1
	for intBucket(k3) == intBucket(k1) {
		k3++
	}
	d := newTestDB(t)
	typ := &Type{Name: "buckets", Table: "buckets"}
	objs := map[int64]*obj{}
	for _, k := range []int64{k1, k2, k3} {
		objs[k] = &obj{id: k}
		d.Shared().Put(typ, &Load{Key: k, Obj: objs[k], Epoch: d.Now()}, nil)
	}
	d.Tick()
	d.ExpireKeys("buckets", k1)
	tab := d.Table("buckets")
	for k, want := range map[int64]bool{k1: false, k2: true, k3: true} {
		e, _ := d.sharedMap(typ).get(k)
		if got := tab.freshInt(k, e.epoch()); got != want {
			t.Errorf("key %d (bucket %d; %d written): fresh %v, want %v", k, intBucket(k), k1, got, want)
		}
		if _, st := d.LookupShared(typ, k); (st == Fresh) != want {
			t.Errorf("key %d: %v, want fresh %v", k, st, want)
		}
	}
	runtime.KeepAlive(objs)
}
