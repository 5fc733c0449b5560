package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// In a scope, a transaction that deletes a row, misses it and rolls back
// leaves the scope's object canonical: the next Get returns it, refreshed,
// with its temporary fields.
func TestIdentityAfterRollbackOfDelete(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 2)
		s := idmap.NewContext(context.Background())
		a, err := idmap.Get[User](s, db, 1)
		require.NoError(t, err)
		a.Visits = 7
		tx, err := db.BeginTx(s, nil)
		require.NoError(t, err)
		mustExec(t, tx, d.q("DELETE FROM users WHERE id = ?"), 1)
		_, err = idmap.Get[User](s, tx, 1)
		require.True(t, errors.Is(err, sql.ErrNoRows), "in the transaction: %v", err)
		require.NoError(t, tx.Rollback())
		mustExec(t, db, "UPDATE users SET name = 'after' WHERE id = 1")
		b, err := idmap.Get[User](s, db, 1)
		require.NoError(t, err)
		require.Same(t, a, b, "the scope forgot its object after a rolled-back delete")
		require.Equal(t, 7, b.Visits)
		require.Equal(t, "after", b.Name, "not refreshed")

		// Committed, the row is gone.
		tx, err = db.BeginTx(s, nil)
		require.NoError(t, err)
		mustExec(t, tx, d.q("DELETE FROM users WHERE id = ?"), 1)
		_, err = idmap.Get[User](s, tx, 1)
		require.True(t, errors.Is(err, sql.ErrNoRows))
		require.NoError(t, tx.Commit())
		_, err = idmap.Get[User](s, db, 1)
		require.True(t, errors.Is(err, sql.ErrNoRows))
		require.Nil(t, idmap.Cached[User](s, db, 1))
	})
}

// A transaction with no scope is its own scope: the shared map never sees
// what it loads, and it is flushed when it ends.
func TestTransactionIsItsOwnScope(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 1)
	shared, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ends []signals.Flush
	defer signals.PostFlush.Connect(func(f signals.Flush) {
		if f.Reason == signals.TxEnd && f.DB == idmap.NameOf(db) {
			ends = append(ends, f)
		}
	})()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "UPDATE users SET name = 'uncommitted' WHERE id = 1")
	in, err := idmap.Get[User](ctx, tx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if in == shared || in.Name != "uncommitted" {
		t.Errorf("in tx: got %p %q; want a new object with the uncommitted name", in, in.Name)
	}
	if c := idmap.Cached[User](ctx, db, 1); c != nil && c.Name == "uncommitted" {
		t.Error("the shared map holds uncommitted data")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if len(ends) != 1 || !ends[0].Scoped {
		t.Errorf("TxEnd flushes: got %+v; want one, scoped", ends)
	}
	after, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if after.Name != "user1" {
		t.Errorf("after rollback: got %q; want user1", after.Name)
	}
}

// Transactions: the writer's map expires at once; other maps at commit;
// rollback expires what the transaction loaded; the shared map never holds
// uncommitted data.
func TestTransactionVisibility(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 2)
	other := idmap.NewContext(ctx)

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	before, err := idmap.Get[User](ctx, tx, 1)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "UPDATE users SET name = 'tx' WHERE id = 1")
	require.NoError(t, err)
	in, err := idmap.Get[User](ctx, tx, 1)
	require.NoError(t, err)
	require.Same(t, before, in, "the transaction's own map refreshes in place")
	require.Equal(t, "tx", in.Name, "the writer does not read its own write")

	// Another unit of work (WAL: reads the committed row) loads the old row
	// while the transaction is open.
	o, err := idmap.Get[User](other, db, 1)
	require.NoError(t, err)
	require.Equal(t, "user1", o.Name)
	require.NoError(t, tx.Commit())
	require.Nil(t, idmap.Cached[User](other, db, 1), "a map kept a row loaded before the commit of a write to it")
	o2, err := idmap.Get[User](other, db, 1)
	require.NoError(t, err)
	require.Equal(t, "tx", o2.Name)

	// Rollback in a scope: what the transaction loaded expires there.
	scope := idmap.NewContext(ctx)
	tx, err = db.BeginTx(scope, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(scope, "UPDATE users SET name = 'doomed' WHERE id = 2")
	require.NoError(t, err)
	d, err := idmap.Get[User](scope, tx, 2)
	require.NoError(t, err)
	require.Equal(t, "doomed", d.Name)
	require.NoError(t, tx.Rollback())
	require.Nil(t, idmap.Cached[User](scope, db, 2), "rolled-back data is served")
	d2, err := idmap.Get[User](scope, db, 2)
	require.NoError(t, err)
	require.Same(t, d, d2)
	require.Equal(t, "user2", d2.Name)
}

// Transaction control sent as SQL: loads in between go to a private map,
// never the shared map.
func TestRawTransactionSQL(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 1)
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	mustExec(t, conn, "BEGIN")
	mustExec(t, conn, "UPDATE users SET name = 'raw' WHERE id = 1")
	u, err := idmap.Get[User](ctx, conn, 1)
	require.NoError(t, err)
	require.Equal(t, "raw", u.Name)
	if c := idmap.Cached[User](ctx, db, 1); c != nil {
		require.NotEqual(t, "raw", c.Name, "the shared map holds uncommitted data")
	}
	mustExec(t, conn, "ROLLBACK")
	got, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "user1", got.Name)
}

// A transaction in a scope expires, at its end, what it loaded there, and
// nothing the scope loaded before it began.
func TestTxEndKeepsEarlierLoads(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 2)
	u2, err := idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	for _, commit := range []bool{true, false} {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "UPDATE users SET name = 'x' WHERE id = 1")
		require.NoError(t, err)
		if commit {
			require.NoError(t, tx.Commit())
		} else {
			require.NoError(t, tx.Rollback())
		}
		require.Same(t, u2, idmap.Cached[User](ctx, db, 2), "commit=%v: a load from before the transaction was expired", commit)
	}
}
