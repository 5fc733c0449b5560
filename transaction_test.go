package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
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
