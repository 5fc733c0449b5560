package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// SPEC's django-idmap table, row "Model.objects.get(pk=1) served from the
// cache, no query": with a *sql.DB, a *sql.Tx and a *sql.Conn.
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

// Cached and Intern take any Querier: a *sql.Tx or *sql.Conn uses its own
// map as Get does.
func TestCachedAndInternTakeAQuerier(t *testing.T) {
	db, count := openCounted(t)
	seedUsers(t, db, 3)
	ctx := context.Background()
	queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
		idmap.Flush(ctx)
		require.Nil(t, idmap.Cached[User](ctx, q, 1))
		u1, err := idmap.Get[User](ctx, q, 1)
		require.NoError(t, err)
		before := count.Queries()
		require.Same(t, u1, idmap.Cached[User](ctx, q, 1))
		require.Same(t, u1, idmap.Cached[User](ctx, q, "1"))
		require.Zero(t, count.Queries()-before, "Cached sends nothing to the server")
		require.Nil(t, idmap.Cached[User](ctx, q, 2))
		require.Nil(t, idmap.Cached[User](ctx, q, 1, 2), "a bad key is nil")

		decoded := []*User{{ID: 1, Name: "stale"}, {ID: 2, Name: "user2", Email: "u2@example.com"}}
		require.NoError(t, idmap.Intern(ctx, q, decoded))
		require.Same(t, u1, decoded[0], "the canonical object replaces the decoded one")
		require.Same(t, decoded[1], idmap.Cached[User](ctx, q, 2), "a new object becomes canonical")
		before = count.Queries()
		u2, err := idmap.Get[User](ctx, q, 2)
		require.NoError(t, err)
		require.Same(t, decoded[1], u2)
		require.Zero(t, count.Queries()-before)
	})

	// What a transaction interns stays in its own map.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	objs := []*User{{ID: 3, Name: "user3"}}
	require.NoError(t, idmap.Intern(ctx, tx, objs))
	require.Same(t, objs[0], idmap.Cached[User](ctx, tx, 3))
	require.NotSame(t, objs[0], idmap.Cached[User](ctx, db, 3))
	require.NoError(t, tx.Rollback())
	require.Nil(t, idmap.Cached[User](ctx, tx, 3), "a finished transaction: nil")
	require.ErrorIs(t, idmap.Intern(ctx, tx, objs), sql.ErrTxDone)

	var nilTx *sql.Tx
	require.Nil(t, idmap.Cached[User](ctx, nilTx, 1))
	require.Nil(t, idmap.Cached[User](ctx, nil, 1))
	require.ErrorIs(t, idmap.Intern(ctx, nilTx, objs), idmap.ErrNotIdmap)
	plain, err := sql.Open("sqlite3", ":memory:")
	require.NoError(t, err)
	defer plain.Close()
	require.Nil(t, idmap.Cached[User](ctx, plain, 1))
	require.ErrorIs(t, idmap.Intern(ctx, plain, objs), idmap.ErrNotIdmap)
	ptx, err := plain.Begin()
	require.NoError(t, err)
	defer ptx.Rollback()
	require.Nil(t, idmap.Cached[User](ctx, ptx, 1))
	require.ErrorIs(t, idmap.Intern(ctx, ptx, objs), idmap.ErrNotIdmap)
}
