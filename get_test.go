package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/go-idmap/idmap"
)

// Row "Model.objects.get(pk=1) served from the cache, no query": with a
// *sql.DB, a *sql.Tx and a *sql.Conn.
func TestGetHitNoRoundTrip(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, count := openCounted(t)
	seedUsers(t, db, 2)

	u, err := idmap.Get[User](ctx, db, 1) // miss: one query
	if err != nil {
		t.Fatal(err)
	}
	before := count.Queries()
	for _, key := range []any{1, int32(1), int64(1), "1", uint8(1)} {
		got, err := idmap.Get[User](ctx, db, key)
		if err != nil || got != u {
			t.Errorf("Get(%T %v): got %p, %v; want %p", key, key, got, err, u)
		}
	}
	if n := count.Queries() - before; n != 0 {
		t.Errorf("Get hits on *sql.DB sent %d queries; want 0", n)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before = count.Queries()
	if got, err := idmap.Get[User](ctx, conn, 1); err != nil || got != u {
		t.Errorf("Get on *sql.Conn: got %p, %v; want %p", got, err, u)
	}
	if n := count.Queries() - before; n != 0 {
		t.Errorf("Get hit on *sql.Conn sent %d queries; want 0", n)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	first, err := idmap.Get[User](ctx, tx, 2)
	if err != nil {
		t.Fatal(err)
	}
	before = count.Queries()
	if got, err := idmap.Get[User](ctx, tx, 2); err != nil || got != first {
		t.Errorf("Get on *sql.Tx: got %p, %v; want %p", got, err, first)
	}
	if n := count.Queries() - before; n != 0 {
		t.Errorf("Get hit on *sql.Tx sent %d queries; want 0", n)
	}

	// A miss is exactly one query.
	before = count.Queries()
	if _, err := idmap.Get[User](context.Background(), db, 2); err != nil {
		t.Fatal(err)
	}
	if n := count.Queries() - before; n != 1 {
		t.Errorf("Get miss sent %d queries; want 1", n)
	}
	if _, err := idmap.Get[User](ctx, db, 99); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("Get of an absent row: got %v; want sql.ErrNoRows", err)
	}
}
