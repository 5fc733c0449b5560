package idmap_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// Transactions (SPEC.md, Maps and Expiry): what a transaction writes is seen
// by its own map at once and by the others at commit; its snapshot is not
// served after it ends. More in transaction_test.go.

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

// With MySQL's autocommit off, every COMMIT begins the next transaction:
// what that one writes is expired again when it commits, after another
// session may have loaded the old rows.
func TestContractAutocommitOff(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "mysql" {
			t.Skip("SET autocommit: MySQL")
		}
		d.seed(t, db, 2)
		bg := context.Background()
		conn, err := db.Conn(bg)
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.ExecContext(bg, "SET autocommit = 0")
		require.NoError(t, err)
		for i := range 3 {
			name := fmt.Sprintf("round%d", i)
			_, err = conn.ExecContext(bg, "UPDATE users SET name = ? WHERE id = 1", name)
			require.NoError(t, err)
			// Another session loads the committed row into the shared map.
			u, err := idmap.Get[User](bg, db, 1)
			require.NoError(t, err)
			require.NotEqual(t, name, u.Name, "round %d: another session saw an uncommitted write", i)
			_, err = conn.ExecContext(bg, "COMMIT")
			require.NoError(t, err)
			u, err = idmap.Get[User](bg, db, 1)
			require.NoError(t, err)
			require.Equal(t, name, u.Name, "round %d: stale row after COMMIT with autocommit off", i)
		}
		_, err = conn.ExecContext(bg, "SET autocommit = 1")
		require.NoError(t, err)
		_, err = conn.ExecContext(bg, "UPDATE users SET name = 'auto' WHERE id = 1")
		require.NoError(t, err)
		u, err := idmap.Get[User](bg, db, 1)
		require.NoError(t, err)
		require.Equal(t, "auto", u.Name)
	})
}

// Every spelling of MySQL's SET autocommit = 0 is recognised: the COMMIT
// that follows expires what the transaction wrote. A value idmap cannot
// read (a variable, DEFAULT, a procedure that sets it) never leads to
// "autocommit assumed".
func TestContractAutocommitSpellings(t *testing.T) {
	spellings := []string{
		"SET @@session.autocommit = 0",
		"SET @@SESSION.AUTOCOMMIT := 0",
		"SET @@local.autocommit = 0",
		"SET @@autocommit = 0",
		"SET autocommit = (0)",
		"SET autocommit = ((0))",
		"SET autocommit = 'OFF'",
		"SET autocommit = \"off\"",
		"SET SESSION autocommit=off",
		"SET LOCAL autocommit = FALSE",
		"SET `autocommit` = 0",
		"SET sql_mode = DEFAULT, autocommit = 0",
		"SET autocommit = 0, @x = 1",
		"/*!40101 SET autocommit = 0 */",
		"SET @off = 0; SET autocommit = @off",    // unknown value: a variable
		"SET autocommit = IF(1 = 1, 0, 1)",       // unknown value: an expression
		"CALL rdr_autocommit_off()",              // a procedure: asked of the server
		"SET autocommit = 1; SET autocommit = 0", // several statements
	}
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "mysql" {
			t.Skip("SET autocommit: MySQL")
		}
		d.seed(t, db, 2)
		mustExec(t, db, "CREATE PROCEDURE rdr_autocommit_off() BEGIN SET autocommit = 0; END")
		bg := context.Background()
		for i, spelling := range append(spellings, "query: CALL rdr_autocommit_off()", "arg: SET autocommit = ?") {
			conn, err := db.Conn(bg)
			require.NoError(t, err)
			if q, ok := strings.CutPrefix(spelling, "query: "); ok {
				// Through the query path: asked when the rows close.
				rows, err := conn.QueryContext(bg, q)
				require.NoError(t, err, spelling)
				require.NoError(t, rows.Close())
			} else if q, ok := strings.CutPrefix(spelling, "arg: "); ok {
				_, err = conn.ExecContext(bg, q, 0) // the value is an argument
				require.NoError(t, err, spelling)
			} else {
				_, err = conn.ExecContext(bg, spelling)
				require.NoError(t, err, spelling)
			}
			name := fmt.Sprintf("spelling%d", i)
			_, err = conn.ExecContext(bg, "UPDATE users SET name = ? WHERE id = 1", name)
			require.NoError(t, err)
			// Another session loads the committed row into the shared map.
			u, err := idmap.Get[User](bg, db, 1)
			require.NoError(t, err)
			require.NotEqual(t, name, u.Name, "%s: another session saw an uncommitted write", spelling)
			_, err = conn.ExecContext(bg, "COMMIT")
			require.NoError(t, err)
			u, err = idmap.Get[User](bg, db, 1)
			require.NoError(t, err)
			require.Equal(t, name, u.Name, "%s: stale row after COMMIT with autocommit off", spelling)
			_, err = conn.ExecContext(bg, "SET autocommit = 1")
			require.NoError(t, err)
			require.NoError(t, conn.Close())
		}
	})
}
