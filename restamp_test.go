package idmap_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-idmap/idmap"
)

// TestGetWhileWritingNoStale: two goroutines Get four rows from the shared
// map as fast as they can while a third updates them one at a time through
// idmap, and a fourth updates four other rows of the table without a
// pause; each update expires its row and passes the table's hit floor over
// the others, whose next hits restamp them (cache/restamp.go). Once an
// UPDATE has returned, a Get of its row gives the new value, whatever the
// readers restamped meanwhile. (The window in which a restamp could pass
// an expiry, between the expiry's epoch and its records, is too narrow for
// this test to hit: cache's TestRestampDuringExpiry and
// TestRestampConcurrent fail when a restamp ignores an expiry under way.)
func TestGetWhileWritingNoStale(t *testing.T) {
	bg := context.Background()
	db, err := sql.Open("idmap+sqlite3", sqliteDSN(t, "restamp.db")+"&_synchronous=OFF")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	seedUsers(t, db, 8)
	for id := int64(1); id <= 4; id++ {
		if _, err := idmap.Get[User](bg, db, id); err != nil {
			t.Fatal(err)
		}
	}
	writes := 2000
	if testing.Short() {
		writes = 200
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { // writes to rows 5-8: the table's floor keeps rising
		for i := 0; !stop.Load(); i++ {
			if _, err := db.ExecContext(bg, "UPDATE users SET email = ? WHERE id = ?", fmt.Sprint(i), 5+i%4); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for r := range 2 {
		wg.Go(func() {
			for i := r; !stop.Load(); i++ {
				if _, err := idmap.Get[User](bg, db, int64(1+i%4)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stale := 0
	for i := range writes {
		id := int64(1 + i%4)
		name := fmt.Sprint("n", i)
		if _, err := db.ExecContext(bg, "UPDATE users SET name = ? WHERE id = ?", name, id); err != nil {
			t.Fatal(err)
		}
		u, err := idmap.Get[User](bg, db, id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != name {
			stale++
		}
	}
	stop.Store(true)
	wg.Wait()
	if stale != 0 {
		t.Errorf("%d of %d Gets after an UPDATE returned gave the row's old name", stale, writes)
	}
}
