package cache

import (
	"fmt"
	"runtime"
	"sync"
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

// TestHitFloorCoversEveryTable: once a whole-database expiry or an age
// step has returned, every table of the database, the ones being made at
// that moment included, has its hit floor at least as high (else a hit
// could pass an expired entry, clean). One writer of each database word,
// tables made by two goroutines meanwhile; after each write every table
// is checked. Table's mutex makes it hold: a table made without it could
// take its floor from the old word and be missed by raiseTables.
func TestHitFloorCoversEveryTable(t *testing.T) {
	d := NewDB("floor")
	const tables = 2000
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range tables / 2 {
				d.Table(fmt.Sprintf("t%d_%d", g, i))
			}
		}()
	}
	check := func(what string, w uint64) {
		t.Helper()
		d.tables.Range(func(name, x any) bool {
			if f := x.(*Table).floor.Load(); f < w {
				t.Fatalf("after %s to %d, table %s has floor %d", what, w, name, f)
			}
			return true
		})
	}
	for i := 0; ; i++ {
		d.ExpireAll()
		check("a whole-database expiry", d.whole.Load())
		e := d.Tick()
		d.raiseAgeFloor(e)
		check("an age step", e)
		if n := d.tableCount(); n == tables && i > 10 {
			break
		}
		runtime.Gosched()
	}
	wg.Wait()
	// A table's own words raise its floor too.
	tb := d.Table("own")
	d.ExpireTable("own")
	d.ExpireKeys("own", int64(1))
	if f, e, k := tb.floor.Load(), tb.epoch.Load(), tb.keyMax.Load(); f < e || f < k {
		t.Errorf("floor %d below the table's epoch %d or newest key %d", f, e, k)
	}
}

func (d *DB) tableCount() int {
	n := 0
	d.tables.Range(func(_, _ any) bool { n++; return true })
	return n
}
