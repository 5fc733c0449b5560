package idmap_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"testing"

	"github.com/go-idmap/idmap"
)

// seedUsersFast inserts users 1..n in one transaction.
func seedUsersFast(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	mustExec(t, db, usersDDL)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		mustExec(t, tx, "INSERT INTO users (id, name, email) VALUES (?, ?, ?)", i, fmt.Sprintf("user%d", i), fmt.Sprintf("u%d@example.com", i))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestBindAcrossChunks: Bind stages its rows in chunks of 512; results of
// every size around the chunks' bounds come back whole and in order, one
// object per row, the same objects as Get's, into the shared map
// (StrongRefs and weak) and a scope, with rows already in the map mixed
// with new ones, and for every destination shape.
func TestBindAcrossChunks(t *testing.T) {
	db := openSQLite(t)
	const total = 1300
	seedUsersFast(t, db, total)
	for _, scoped := range []bool{false, true} {
		for _, n := range []int{0, 1, 511, 512, 513, 1025, total} {
			t.Run(fmt.Sprintf("scoped=%v/n=%d", scoped, n), func(t *testing.T) {
				idmap.Flush(context.Background())
				ctx := scopedCtx(scoped)
				// Every third row is in the map before the Bind.
				for id := 3; id <= n; id += 3 {
					if _, err := idmap.Get[User](ctx, db, id); err != nil {
						t.Fatal(err)
					}
				}
				us := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id <= ? ORDER BY id", n)
				if len(us) != n {
					t.Fatalf("%d rows; want %d", len(us), n)
				}
				for i, u := range us {
					if u.ID != int64(i+1) || u.Name != fmt.Sprintf("user%d", i+1) {
						t.Fatalf("row %d: %+v; want user %d", i, u, i+1)
					}
					if g, err := idmap.Get[User](ctx, db, u.ID); err != nil || g != u {
						t.Fatalf("row %d: Get gives %p (%v); Bind gave %p", i, g, err, u)
					}
				}
				again := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id <= ? ORDER BY id DESC", n)
				for i, u := range again {
					if u != us[n-1-i] {
						t.Fatalf("second Bind, row %d: another object", i)
					}
				}
				var plain []Plain
				rows, err := db.QueryContext(ctx, "SELECT id, name FROM users WHERE id <= ? ORDER BY id", n)
				if err != nil {
					t.Fatal(err)
				}
				if err := idmap.Bind(rows, &plain); err != nil {
					t.Fatal(err)
				}
				if len(plain) != n || (n > 0 && plain[n-1].ID != int64(n)) {
					t.Fatalf("*[]Plain: %d rows; want %d in order", len(plain), n)
				}
				if n == 0 {
					return
				}
				var one *User
				rows, err = db.QueryContext(ctx, "SELECT id, name, email FROM users WHERE id <= ? ORDER BY id DESC", n)
				if err != nil {
					t.Fatal(err)
				}
				if err := idmap.Bind(rows, &one); err != nil || one != us[n-1] {
					t.Fatalf("**User: %p (%v); want the last row's object %p", one, err, us[n-1])
				}
			})
		}
	}
	runtime.KeepAlive(db)
}

// TestBindStagingBytes: the rows of a Bind are staged in chunks, never
// copied into a larger slice as they arrive (append's growth copied each
// row about five times over, ~250 bytes a row for 20,000 rows), and the
// shared map's tables are made once for the rows' keys: a Bind of 20,000
// new rows allocates less than 300 bytes a row, object, strings and the
// driver's values included. It failed before (554 bytes a row; 224 after).
func TestBindStagingBytes(t *testing.T) {
	db := openSQLite(t)
	const n = 20_000
	seedUsersFast(t, db, n)
	ctx := context.Background()
	queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id <= 100") // warm up
	var best float64
	for round := range 3 {
		idmap.Flush(ctx)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		us := queryUsers(t, ctx, db, "SELECT id, name, email FROM users")
		runtime.ReadMemStats(&after)
		if len(us) != n {
			t.Fatalf("%d rows; want %d", len(us), n)
		}
		perRow := float64(after.TotalAlloc-before.TotalAlloc) / n
		if round == 0 || perRow < best {
			best = perRow
		}
		runtime.KeepAlive(us)
	}
	t.Logf("Bind of %d rows: %.0f bytes allocated a row", n, best)
	if best > 300 {
		t.Errorf("Bind of %d rows allocated %.0f bytes a row; want < 300", n, best)
	}
}
