package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// The statement reader is conservative by construction: what it cannot
// bound widens (keys → table → database). These tests hold it to that for
// each class of statement whose effects the text alone does not show.

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

// mysqlOtherDB creates another database on the MySQL server of db, dropped
// when the test ends, and returns its name and that of db's own.
func mysqlOtherDB(t *testing.T, db *sql.DB) (own, other string) {
	t.Helper()
	require.NoError(t, db.QueryRow("SELECT DATABASE()").Scan(&own))
	other = own + "_other"
	mustExec(t, db, "CREATE DATABASE "+other)
	t.Cleanup(func() {
		a, err := sql.Open("mysql", os.Getenv("IDMAP_MYSQL_DSN"))
		if err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + other)
			a.Close()
		}
	})
	return own, other
}

// MySQL's catalogue is read for every database the connection can reach:
// a write to otherdb.table finds that table's triggers, and a connection
// whose current database was changed with USE neither reads the wrong
// catalogue nor resolves names in the wrong database.
func TestContractCatalogueEveryDatabase(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "mysql" {
			t.Skip("databases on one server, USE: MySQL")
		}
		d.seed(t, db, 3)
		own, other := mysqlOtherDB(t, db)
		mustExec(t, db, "CREATE TABLE "+other+".jobs (id INTEGER PRIMARY KEY, done INTEGER)")
		mustExec(t, db, "INSERT INTO "+other+".jobs VALUES (1, 0)")
		mustExec(t, db, "CREATE TRIGGER "+other+".jobs_touch AFTER UPDATE ON "+other+".jobs FOR EACH ROW UPDATE "+own+".users SET email = 'from other' WHERE id = 1")
		ctx := idmap.NewContext(context.Background())

		// A statement that names otherdb.table.
		_ = loadAll(t, ctx, db)
		mustExec(t, db, "UPDATE "+other+".jobs SET done = 1 WHERE id = 1")
		u, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		require.Equal(t, "from other", u.Email, "a trigger in another database was not followed")

		// A connection whose current database is the other one: the
		// catalogue it reads is every database's, and its unqualified
		// names are the other database's.
		mustExec(t, db, "UPDATE users SET email = '' WHERE id = 1")
		conn, err := db.Conn(context.Background())
		require.NoError(t, err)
		defer conn.Close()
		mustExec(t, conn, "USE "+other)
		mustExec(t, conn, "CREATE TABLE scratch (id INTEGER PRIMARY KEY)") // DDL: the catalogue is read again, on conn
		_ = loadAll(t, ctx, db)
		mustExec(t, conn, "UPDATE jobs SET done = 2 WHERE id = 1")
		u, err = idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		require.Equal(t, "from other", u.Email, "an unqualified name after USE was resolved in the database opened on")

		mustExec(t, conn, "USE "+own)
		mustExec(t, conn, "CREATE TRIGGER posts_touch AFTER UPDATE ON posts FOR EACH ROW UPDATE users SET email = 'from posts' WHERE id = 2")
		_ = loadAll(t, ctx, db)
		mustExec(t, conn, "USE "+other)
		mustExec(t, conn, "INSERT INTO jobs VALUES (2, 0)") // the catalogue is read on conn, whose current database is the other one
		mustExec(t, db, "UPDATE posts SET title = 'x' WHERE id = 2")
		u, err = idmap.Get[User](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "from posts", u.Email, "the catalogue was read for the connection's current database only")
	})
}

// A SELECT from a view that calls a writing function writes: the rows the
// function writes are expired. So is a read through a view of such a view.
func TestContractReadThroughWritingView(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		switch d.dialect {
		case "sqlite":
			t.Skip("SQLite has no functions defined in SQL")
		case "mysql":
			mustExec(t, db, "CREATE FUNCTION rdr_rename(uid BIGINT, n VARCHAR(100)) RETURNS INT MODIFIES SQL DATA BEGIN UPDATE users SET name = n WHERE id = uid; RETURN 1; END")
			mustExec(t, db, "CREATE VIEW rdr_renaming AS SELECT id, rdr_rename(user_id, CONCAT('viewed', user_id)) AS r FROM posts")
		case "postgres":
			mustExec(t, db, "CREATE FUNCTION rdr_rename(uid BIGINT, n TEXT) RETURNS INT LANGUAGE sql AS $$ UPDATE users SET name = n WHERE id = uid RETURNING 1 $$")
			mustExec(t, db, "CREATE VIEW rdr_renaming AS SELECT id, rdr_rename(user_id, 'viewed' || user_id) AS r FROM posts")
		}
		mustExec(t, db, "CREATE VIEW rdr_renaming2 AS SELECT id, r FROM rdr_renaming")
		ctx := idmap.NewContext(context.Background())
		for i, view := range []string{"rdr_renaming", "rdr_renaming2"} {
			mustExec(t, db, "UPDATE users SET name = 'plain'")
			_ = loadAll(t, ctx, db)
			var n int
			require.NoError(t, db.QueryRowContext(ctx, d.q("SELECT SUM(r) FROM "+view+" WHERE id = ?"), 2).Scan(&n))
			u, err := idmap.Get[User](ctx, db, 2)
			require.NoError(t, err)
			require.Equal(t, "viewed2", u.Name, "round %d: stale row after a SELECT from %s", i, view)
		}

		// A view whose definition calls nothing that writes widens nothing.
		mustExec(t, db, "CREATE VIEW rdr_plain AS SELECT id, name FROM users")
		_ = loadAll(t, ctx, db)
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rdr_plain").Scan(&n))
		require.Len(t, cachedIDs(ctx, db, 1, 2, 3), 3, "a read through a plain view expired rows")
	})
}

// PostgreSQL runs a writing function where the statement does not name
// it: a column DEFAULT, a user-defined operator. Both widen.
func TestContractHiddenWritingFunction(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "postgres" {
			t.Skip("functions in defaults and operators: PostgreSQL")
		}
		d.seed(t, db, 3)
		mustExec(t, db, "CREATE FUNCTION rdr_stamp() RETURNS BIGINT LANGUAGE sql AS $$ UPDATE users SET name = 'defaulted' WHERE id = 2 RETURNING 7::bigint $$")
		mustExec(t, db, "CREATE TABLE rdr_log (id BIGINT PRIMARY KEY, stamp BIGINT DEFAULT rdr_stamp())")
		mustExec(t, db, "CREATE FUNCTION rdr_op(a BIGINT, b BIGINT) RETURNS BOOLEAN LANGUAGE sql AS $$ UPDATE users SET name = 'operated' WHERE id = a RETURNING true $$")
		mustExec(t, db, "CREATE OPERATOR ### (LEFTARG = BIGINT, RIGHTARG = BIGINT, FUNCTION = rdr_op)")
		ctx := idmap.NewContext(context.Background())

		_ = loadAll(t, ctx, db)
		mustExec(t, db, "INSERT INTO rdr_log (id) VALUES (1)")
		u, err := idmap.Get[User](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "defaulted", u.Name, "stale row after an INSERT whose DEFAULT writes")

		_ = loadAll(t, ctx, db)
		var ok bool
		require.NoError(t, db.QueryRowContext(ctx, "SELECT 3::bigint ### 0::bigint").Scan(&ok))
		u, err = idmap.Get[User](ctx, db, 3)
		require.NoError(t, err)
		require.Equal(t, "operated", u.Name, "stale row after a SELECT with a writing operator")
	})
}

// CICode is keyed by text under an accent- and case-insensitive
// (nondeterministic) collation on PostgreSQL.
type CICode struct {
	CICode string `db:"code,pk"`
	Name   string `db:"name"`
}

func (CICode) TableName() string { return "rdr_codes" }

// Text keys under a nondeterministic collation widen to the table: WHERE
// code = 'Café' writes the row whose key is 'cafe'.
func TestContractNondeterministicCollation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "postgres" {
			t.Skip("nondeterministic collations: PostgreSQL")
		}
		mustExec(t, db, "CREATE COLLATION rdr_ci (provider = icu, locale = 'und-u-ks-level1', deterministic = false)")
		mustExec(t, db, "CREATE TABLE rdr_codes (code TEXT COLLATE rdr_ci PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO rdr_codes VALUES ('cafe', 'a'), ('xyz', 'x')")
		ctx := idmap.NewContext(context.Background())
		c, err := idmap.Get[CICode](ctx, db, "cafe")
		require.NoError(t, err)
		require.Equal(t, "a", c.Name)
		mustExec(t, db, "UPDATE rdr_codes SET name = 'b' WHERE code = $1", "Café")
		c, err = idmap.Get[CICode](ctx, db, "cafe")
		require.NoError(t, err)
		require.Equal(t, "b", c.Name, "stale row after a write by a key spelled with an accent")
	})
}

// CasedCols is a PostgreSQL table with two columns whose names differ only in
// case: "Id" and id.
type CasedCols struct {
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
}

func (CasedCols) TableName() string { return "rdr_quoted" }

// Column names are compared as the engine compares them: on PostgreSQL a
// quoted "Id" is not the key column id; elsewhere ID and id are one column.
func TestContractColumnNameCase(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		ctx := idmap.NewContext(context.Background())
		if d.dialect != "postgres" {
			// One column whatever the case: the write still expires by key.
			d.seed(t, db, 3)
			_ = loadAll(t, ctx, db)
			mustExec(t, db, "UPDATE users SET name = 'cased' WHERE ID = 2")
			u, err := idmap.Get[User](ctx, db, 2)
			require.NoError(t, err)
			require.Equal(t, "cased", u.Name)
			require.Len(t, cachedIDs(ctx, db, 1, 3), 2, "a write by key in another case widened")
			return
		}
		mustExec(t, db, `CREATE TABLE rdr_quoted ("Id" BIGINT NOT NULL, id BIGINT PRIMARY KEY, name TEXT NOT NULL)`)
		mustExec(t, db, `INSERT INTO rdr_quoted ("Id", id, name) VALUES (1, 2, 'a'), (2, 1, 'b')`)
		q1, err := idmap.Get[CasedCols](ctx, db, 1)
		require.NoError(t, err)
		q2, err := idmap.Get[CasedCols](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "b", q1.Name)
		require.Equal(t, "a", q2.Name)
		mustExec(t, db, `UPDATE rdr_quoted SET name = 'z' WHERE "Id" = 1`) // the row whose id is 2
		q2, err = idmap.Get[CasedCols](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "z", q2.Name, `stale row after a write by "Id", taken for id`)
	})
}

// A read of mapped tables does not read the catalogue: the first GetMany
// with misses is one query (IN ( is not a call to a function).
func TestGetManyReadsNoCatalogue(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		mustExec(t, db, "CREATE TABLE rdr_scratch (id INTEGER PRIMARY KEY)") // DDL: the catalogue is forgotten
		before := count.n.Load()
		us, err := idmap.GetMany[User](context.Background(), db, 1, 2, 3)
		require.NoError(t, err)
		require.Len(t, us, 3)
		require.EqualValues(t, 1, count.n.Load()-before, "GetMany with misses: %q", lastQueries(count, before))
		before = count.n.Load()
		_, err = idmap.Get[User](idmap.NewContext(context.Background()), db, 1)
		require.NoError(t, err)
		require.EqualValues(t, 1, count.n.Load()-before, "Get with a miss: %q", lastQueries(count, before))
	})
}

func lastQueries(c *counter, from int64) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int(from) > len(c.log) {
		return nil
	}
	return append([]string(nil), c.log[from:]...)
}

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
