package idmap_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/go-idmap/idmap"
)

// TestScopeEntriesDroppedScopes: the scope entry gauge counts live entries
// only. Scopes whose contexts are dropped without a Flush (NewContext ends
// when its context is dropped) leave nothing in it once collected.
func TestScopeEntriesDroppedScopes(t *testing.T) {
	gaugeRuns++ // a database of its own per run (-count): scopes of an earlier run may be collected during this one
	db, _ := openCounted(t, idmap.Name(fmt.Sprintf("scope-gauge-%d", gaugeRuns)))
	seedUsers(t, db, 3)
	bg := context.Background()
	before, _ := idmap.StatsOf(db)
	func() {
		for range 1000 {
			ctx := idmap.NewContext(bg)
			queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id = 1")
			if _, err := idmap.Get[User](ctx, db, 1); err != nil {
				t.Fatal(err)
			}
		}
	}()
	mid, _ := idmap.StatsOf(db)
	if got := mid.Scopes.Entries - before.Scopes.Entries; got < 0 || got > 1000 {
		t.Fatalf("scope entries while the scopes may live: %d; want 0…1000", got)
	}
	// Cleanups run after a collection, on their own goroutine: rounds of
	// GC and yielding give them time.
	var got int64
	for range 500 {
		runtime.GC()
		runtime.Gosched()
		st, _ := idmap.StatsOf(db)
		if got = st.Scopes.Entries - before.Scopes.Entries; got == 0 {
			break
		}
	}
	if got != 0 {
		t.Errorf("scope entries after 1,000 dropped scopes and GC: %d; want 0", got)
	}
	// A live scope still counts.
	ctx := idmap.NewContext(bg)
	queryUsers(t, ctx, db, "SELECT id, name, email FROM users")
	runtime.GC()
	st, _ := idmap.StatsOf(db)
	if got := st.Scopes.Entries - before.Scopes.Entries; got != 3 {
		t.Errorf("scope entries of a live scope: %d; want 3", got)
	}
	idmap.Flush(ctx)
}

var gaugeRuns int
