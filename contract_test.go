package idmap_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// The contract, once per base driver (see servers_test.go), and within each
// driver over *sql.DB, *sql.Conn and *sql.Tx.

func TestContractIdentity(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
			all := queryUsers(t, ctx, q, "SELECT id, name, email FROM users ORDER BY id")
			require.Len(t, all, 3)
			one := queryUsers(t, ctx, q, d.q("SELECT id, name, email FROM users WHERE name = ?"), "user2")
			require.Same(t, all[1], one[0])
			all[1].Visits = 7
			again := queryUsers(t, ctx, q, "SELECT id, name, email FROM users ORDER BY id DESC")
			require.Equal(t, 7, again[1].Visits, "a temporary field was lost")

			before := count.Queries()
			for _, k := range []any{2, int32(2), "2"} {
				got, err := idmap.Get[User](ctx, q, k)
				require.NoError(t, err)
				require.Same(t, all[1], got)
			}
			require.Zero(t, count.Queries()-before, "a Get hit reached the server")

			before = count.Queries()
			p, err := idmap.Get[Post](ctx, q, 1)
			require.NoError(t, err)
			require.Equal(t, "post1", p.Title)
			require.Equal(t, int64(1), count.Queries()-before, "a Get miss is one query")
			_, err = idmap.Get[Post](ctx, q, 42)
			require.ErrorIs(t, err, sql.ErrNoRows)
		})
	})
}

func TestContractExpiry(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 4)
		ctx := idmap.NewContext(context.Background())
		load := func() []*User { return queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id") }
		fresh := func(ids ...int64) []int64 { return cachedIDs(ctx, db, ids...) }

		us := load()
		mustExec(t, db, d.q("UPDATE users SET name = ? WHERE id = ?"), "two", 2)
		require.Equal(t, []int64{1, 3, 4}, fresh(1, 2, 3, 4), "update by key")
		u2, err := idmap.Get[User](ctx, db, 2)
		require.NoError(t, err)
		require.Same(t, us[1], u2)
		require.Equal(t, "two", u2.Name)

		load()
		mustExec(t, db, d.q("UPDATE users SET email = ? WHERE name LIKE ?"), "x", "user%")
		require.Empty(t, fresh(1, 2, 3, 4), "update by predicate")

		load()
		mustExec(t, db, d.upsert(), 3, "three")
		got := fresh(1, 2, 3, 4)
		require.NotContains(t, got, int64(3), "upsert")
		u3, err := idmap.Get[User](ctx, db, 3)
		require.NoError(t, err)
		require.Equal(t, "three", u3.Name)

		// A DELETE cascades to posts; the entries are gone.
		load()
		p, err := idmap.Get[Post](ctx, db, 1)
		require.NoError(t, err)
		mustExec(t, db, d.q("DELETE FROM users WHERE id = ?"), 1)
		require.Nil(t, idmap.Cached[User](ctx, db, 1))
		require.Nil(t, idmap.Cached[Post](ctx, db, 1), "the cascaded delete left the post")
		_, err = idmap.Get[Post](ctx, db, 1)
		require.ErrorIs(t, err, sql.ErrNoRows)
		_ = p

		// A changed primary key leaves nothing under the old key.
		load()
		mustExec(t, db, "DELETE FROM posts WHERE user_id = 4")
		mustExec(t, db, "UPDATE users SET id = 40 WHERE id = 4")
		_, err = idmap.Get[User](ctx, db, 4)
		require.ErrorIs(t, err, sql.ErrNoRows)
		u40, err := idmap.Get[User](ctx, db, 40)
		require.NoError(t, err)
		require.Equal(t, "user4", u40.Name)

		// Schema change: flushes the table.
		load()
		mustExec(t, db, "CREATE INDEX users_email ON users (email)")
		require.Empty(t, fresh(2, 3))
	})
}

// Isolation on every driver: a transaction's writes are seen by its own
// map at once, by other units of work and the shared map only after commit,
// and never when it rolls back.
func TestContractIsolation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 2)
		levels := []sql.IsolationLevel{sql.LevelDefault}
		if d.dialect != "sqlite" {
			levels = []sql.IsolationLevel{sql.LevelReadCommitted, sql.LevelRepeatableRead}
		}
		for _, level := range levels {
			t.Run(level.String(), func(t *testing.T) {
				bg := context.Background()
				other := idmap.NewContext(bg)
				shared, err := idmap.Get[User](bg, db, 1)
				require.NoError(t, err)
				_, err = idmap.Get[User](other, db, 1)
				require.NoError(t, err)

				for _, commit := range []bool{false, true} {
					tx, err := db.BeginTx(bg, &sql.TxOptions{Isolation: level})
					require.NoError(t, err)
					in, err := idmap.Get[User](bg, tx, 1)
					require.NoError(t, err)
					want := in.Name + "+"
					_, err = tx.ExecContext(bg, d.q("UPDATE users SET name = ? WHERE id = ?"), want, 1)
					require.NoError(t, err)
					in2, err := idmap.Get[User](bg, tx, 1)
					require.NoError(t, err)
					require.Same(t, in, in2)
					require.Equal(t, want, in2.Name, "the transaction does not read its own write")

					o, err := idmap.Get[User](other, db, 1)
					require.NoError(t, err)
					require.NotEqual(t, want, o.Name, "another unit of work sees uncommitted data")
					s, err := idmap.Get[User](bg, db, 1)
					require.NoError(t, err)
					require.NotEqual(t, want, s.Name, "the shared map sees uncommitted data")

					if commit {
						require.NoError(t, tx.Commit())
					} else {
						require.NoError(t, tx.Rollback())
					}
					o, err = idmap.Get[User](other, db, 1)
					require.NoError(t, err)
					s, err = idmap.Get[User](bg, db, 1)
					require.NoError(t, err)
					if commit {
						require.Equal(t, want, o.Name, "after commit, another unit of work sees the old row")
						require.Equal(t, want, s.Name, "after commit, the shared map serves the old row")
					} else {
						require.NotEqual(t, want, o.Name)
						require.NotEqual(t, want, s.Name)
					}
				}
				_ = shared
			})
		}
	})
}

// Locking reads are never answered from the map, and refresh what they load.
func TestContractLockingRead(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect == "sqlite" {
			t.Skip("SQLite has no SELECT … FOR UPDATE")
		}
		d.seed(t, db, 1)
		ctx := idmap.NewContext(context.Background())
		u, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		// Change the row behind idmap's back.
		behind(t, db, d.q("UPDATE users SET name = ? WHERE id = ?"), "behind", 1)
		got, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		require.Equal(t, "user1", got.Name, "(a write behind idmap's back is not seen: expected)")

		locks := []string{"FOR UPDATE", "FOR SHARE"}
		if d.dialect == "mysql" {
			locks = []string{"FOR UPDATE", "LOCK IN SHARE MODE"} // MariaDB has no FOR SHARE
		}
		for _, lock := range locks {
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			before := count.Queries()
			rows, err := tx.QueryContext(ctx, "SELECT id, name, email FROM users WHERE id = 1 "+lock)
			require.NoError(t, err)
			var us []*User
			require.NoError(t, idmap.Bind(rows, &us))
			require.Equal(t, int64(1), count.Queries()-before)
			require.Same(t, u, us[0], "a locking read in the scope's transaction refreshes in place")
			require.Equal(t, "behind", us[0].Name, "a locking read did not refresh")
			require.NoError(t, tx.Commit())
		}
	})
}

// behind runs a statement on the base connection, bypassing idmap.
func behind(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	conn, err := db.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Raw(func(dc any) error {
		bc := dc.(interface{ Unwrap() driverConn }).Unwrap()
		_, err := execBase(bc, query, args...)
		return err
	}))
}

// RETURNING through the query path counts as a write.
func TestContractReturning(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 2)
		ctx := idmap.NewContext(context.Background())
		_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users")
		q := "UPDATE users SET name = 'ret' WHERE id = 1 RETURNING id, name, email"
		if d.dialect == "mysql" {
			q = "DELETE FROM users WHERE id = 1 RETURNING id, name, email" // MariaDB: INSERT/DELETE … RETURNING
			mustExec(t, db, "DELETE FROM posts WHERE user_id = 1")
		}
		rows, err := db.QueryContext(ctx, q)
		require.NoError(t, err)
		var us []*User
		require.NoError(t, idmap.Bind(rows, &us))
		require.Len(t, us, 1)
		require.Nil(t, idmap.Cached[User](ctx, db, 1), "a write through the query path left its row fresh")
		require.NotNil(t, idmap.Cached[User](ctx, db, 2), "a write by key expired another key")
	})
}

// A transaction that reads from a snapshot (REPEATABLE READ; SQLite's WAL
// read transactions) in a unit of work's scope: what it loaded there is not
// served as fresh after it ends, when others committed meanwhile.
func TestContractSnapshotInScope(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 2)
		level := sql.LevelRepeatableRead
		if d.dialect == "sqlite" {
			level = sql.LevelDefault
		}
		scope := idmap.NewContext(context.Background())
		tx, err := db.BeginTx(scope, &sql.TxOptions{Isolation: level})
		require.NoError(t, err)
		first, err := idmap.Get[User](scope, tx, 2) // the snapshot begins
		require.NoError(t, err)
		require.Equal(t, "user2", first.Name)
		// Another unit of work commits a write to row 1.
		mustExec(t, db, d.q("UPDATE users SET name = ? WHERE id = ?"), "committed", 1)
		in, err := idmap.Get[User](scope, tx, 1)
		require.NoError(t, err)
		require.Equal(t, "user1", in.Name, "(the transaction reads its snapshot: expected)")
		require.NoError(t, tx.Commit())
		after, err := idmap.Get[User](scope, db, 1)
		require.NoError(t, err)
		require.Equal(t, "committed", after.Name, "the scope served the transaction's snapshot after it ended")
	})
}
