package cache

import (
	"runtime"
	"testing"
)

// TestNewDBIndependent: two databases, even of one name, share no entry and
// no expiry.
func TestNewDBIndependent(t *testing.T) {
	a, b := NewDB("same"), NewDB("same")
	if a == b || a.Name() != "same" || b.Name() != "same" {
		t.Fatalf("NewDB gave %p %q and %p %q", a, a.Name(), b, b.Name())
	}
	o, l := load(1, a.Now())
	a.Shared().Put(userType, l, nil)
	if p, st := b.Shared().Lookup(userType, int64(1)); p != nil || st != Absent {
		t.Error("one database's entry is in another's map")
	}
	b.ExpireAll()
	if _, st := a.Shared().Lookup(userType, int64(1)); st != Fresh {
		t.Error("one database's expiry expired another's entry")
	}
	runtime.KeepAlive(o)
}

// TestHitFloors: once a write of a word that a hit floor folds in has
// returned, the floor is at least as high (else a hit could pass an
// expired entry, clean): the database's floor for whole-database expiries,
// age steps, pauses and leases, a table's for its own expiries, its keys'
// (and their collapse into the table's), and a key that cannot be
// recorded.
func TestHitFloors(t *testing.T) {
	d := NewDB("floor")
	d.keyLimit = 4
	tb := d.Table("t")
	check := func(what string) {
		t.Helper()
		if f, w, a := d.floor.Load(), d.whole.Load(), d.ageFloor.Load(); f < w || f < a {
			t.Errorf("after %s: database floor %d, whole %d, age floor %d", what, f, w, a)
		}
		if f, e, k := tb.floor.Load(), tb.epoch.Load(), tb.keyMax.Load(); f < e || f < k {
			t.Errorf("after %s: table floor %d, epoch %d, newest key %d", what, f, e, k)
		}
	}
	for i := range 10 {
		d.ExpireAll()
		check("a whole-database expiry")
		d.raiseAgeFloor(d.Tick())
		check("an age step")
		d.ExpireTable("t")
		check("a table expiry")
		d.ExpireKeys("t", int64(i), int64(i+100)) // past keyLimit: a collapse
		check("key expiries")
		d.ExpireKeys("t", []int{i}) // not comparable: widens to the table
		check("a key that cannot be recorded")
	}
	// A pause and a lease take every entry off the hit path while they
	// last (a lease is checked against the clock, on the general path).
	e := d.Tick()
	for _, on := range []func(){d.Pause, func() { d.SetLease(Mono() + 1e12) }} {
		on()
		if d.clean(tb, e) {
			t.Error("an entry is clean while paused or under a lease")
		}
		d.Resume()
		d.SetLease(0)
		check("a pause or lease that ended")
		e = d.Tick()
		if !d.clean(tb, e) {
			t.Error("an entry loaded after a pause or lease ended is not clean")
		}
	}
	// Each kind of write sends an entry loaded before it off the hit path.
	e = d.Now()
	for _, w := range []func(){d.ExpireAll, func() { d.raiseAgeFloor(d.Tick()) }, func() { d.ExpireTable("t") }, func() { d.ExpireKeys("t", int64(7)) }} {
		if !d.clean(tb, e) {
			t.Fatal("an entry clean before the write is not")
		}
		w()
		if d.clean(tb, e) {
			t.Error("an entry loaded before a write is still clean after it")
		}
		e = d.Tick()
	}
}
