package idmap_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// Writes the database makes on a statement's behalf (SPEC.md, Expiry):
// triggers, foreign-key actions, functions and views, as each database's
// catalogue shows them.
//
// The statement reader is conservative by construction: what it cannot
// bound widens (keys → table → database). These tests hold it to that for
// each class of statement whose effects the text alone does not show.

// Triggers are read from each database's catalogue: a write to a table with
// triggers widens to the whole database.
func TestContractTriggers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 2)
		switch d.dialect {
		case "sqlite":
			mustExec(t, db, "CREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN UPDATE users SET email = 'touched' WHERE id = NEW.user_id; END")
		case "mysql":
			mustExec(t, db, "CREATE TRIGGER posts_touch AFTER UPDATE ON posts FOR EACH ROW UPDATE users SET email = 'touched' WHERE id = NEW.user_id")
		case "postgres":
			mustExec(t, db, `CREATE FUNCTION posts_touch() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN UPDATE users SET email = 'touched' WHERE id = NEW.user_id; RETURN NEW; END $$`)
			mustExec(t, db, "CREATE TRIGGER posts_touch AFTER UPDATE ON posts FOR EACH ROW EXECUTE FUNCTION posts_touch()")
		}
		ctx := idmap.NewContext(context.Background())
		u, err := idmap.Get[User](ctx, db, 2)
		require.NoError(t, err)
		require.NotEqual(t, "touched", u.Email)
		mustExec(t, db, d.q("UPDATE posts SET title = ? WHERE id = ?"), "new", 2)
		got, err := idmap.Get[User](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "touched", got.Email, "a trigger's write was served stale")
	})
}

// A trigger that another process adds (a migration) is found within the
// catalogue's time to live: writes to its table widen from then on.
func TestCatalogueRereadAfterTTL(t *testing.T) {
	dir := t.TempDir()
	dsn := "file:" + filepath.Join(dir, "ttl.db") + "?_journal_mode=WAL&_busy_timeout=10000"
	db, err := sql.Open("idmap+sqlite3", dsn)
	require.NoError(t, err)
	defer db.Close()
	other, err := sql.Open("sqlite3", dsn) // another process: idmap does not see it
	require.NoError(t, err)
	defer other.Close()
	seedUsers(t, db, 2)
	mustExec(t, db, "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)")
	mustExec(t, db, "INSERT INTO posts (id, user_id, title) VALUES (1, 2, 'a')") // the catalogue is read

	mustExec(t, other, "CREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN UPDATE users SET email = 'touched' WHERE id = NEW.user_id; END")
	defer idmap.SetSchemaTTL(0)()
	ctx := idmap.NewContext(context.Background())
	u, err := idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	require.NotEqual(t, "touched", u.Email)
	mustExec(t, db, "UPDATE posts SET title = 'b' WHERE id = 1")
	got, err := idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	require.Equal(t, "touched", got.Email, "a trigger added by another process was not found")
}

// A foreign-key action that reaches a table with a trigger runs that
// trigger: a write to the parent table widens as a write to that table
// would.
func TestContractCascadeIntoTrigger(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3) // posts.user_id → users.id ON DELETE CASCADE
		switch d.dialect {
		case "sqlite":
			mustExec(t, db, "CREATE TRIGGER posts_gone AFTER DELETE ON posts BEGIN UPDATE users SET email = 'post gone' WHERE id = 1; END")
		case "mysql":
			t.Skip("MySQL does not run triggers for rows that foreign-key actions change")
		case "postgres":
			mustExec(t, db, `CREATE FUNCTION posts_gone() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN UPDATE users SET email = 'post gone' WHERE id = 1; RETURN OLD; END $$`)
			mustExec(t, db, "CREATE TRIGGER posts_gone AFTER DELETE ON posts FOR EACH ROW EXECUTE FUNCTION posts_gone()")
		}
		ctx := idmap.NewContext(context.Background())
		u, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		require.NotEqual(t, "post gone", u.Email)
		mustExec(t, db, d.q("DELETE FROM users WHERE id = ?"), 3)
		got, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		require.Equal(t, "post gone", got.Email, "%s: a trigger run by a cascade was served stale", d.name)
	})
}

// Emp is a table whose foreign key points at itself.
type Emp struct {
	ID      int64  `db:"id,pk"`
	Manager *int64 `db:"manager_id"`
	Name    string `db:"name"`
}

func (Emp) TableName() string { return "emps" }

// A foreign key from a table to itself: deleting one row deletes others of
// the same table (ON DELETE CASCADE), which are not served any more.
func TestContractSelfCascade(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		mustExec(t, db, "CREATE TABLE emps (id BIGINT PRIMARY KEY, manager_id BIGINT, name VARCHAR(20) NOT NULL, FOREIGN KEY (manager_id) REFERENCES emps(id) ON DELETE CASCADE)")
		mustExec(t, db, "INSERT INTO emps (id, manager_id, name) VALUES (1, NULL, 'boss')")
		mustExec(t, db, "INSERT INTO emps (id, manager_id, name) VALUES (2, 1, 'report')")
		ctx := idmap.NewContext(context.Background())
		rows, err := db.QueryContext(ctx, "SELECT id, manager_id, name FROM emps")
		require.NoError(t, err)
		var es []*Emp
		require.NoError(t, idmap.Bind(rows, &es))
		require.Len(t, es, 2)
		mustExec(t, db, d.q("DELETE FROM emps WHERE id = ?"), 1)
		_, err = idmap.Get[Emp](ctx, db, 2)
		require.ErrorIs(t, err, sql.ErrNoRows, "%s: a row the cascade deleted is still served", d.name)
	})
}

// A function that the database defines may write: a statement that calls
// it, a SELECT included, expires what it may have written.
func TestContractWritingFunction(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		switch d.dialect {
		case "sqlite":
			t.Skip("SQLite has no functions defined in SQL")
		case "mysql":
			mustExec(t, db, "CREATE FUNCTION rename_user(uid BIGINT, n VARCHAR(100)) RETURNS INT MODIFIES SQL DATA BEGIN UPDATE users SET name = n WHERE id = uid; RETURN 1; END")
		case "postgres":
			mustExec(t, db, "CREATE FUNCTION rename_user(uid BIGINT, n TEXT) RETURNS INT LANGUAGE sql AS $$ UPDATE users SET name = n WHERE id = uid RETURNING 1 $$")
		}
		ctx := idmap.NewContext(context.Background())
		_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		var one int
		require.NoError(t, db.QueryRowContext(ctx, d.q("SELECT rename_user(?, ?)"), 2, "renamed").Scan(&one))
		u, err := idmap.Get[User](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "renamed", u.Name, "%s: stale row after SELECT rename_user(…)", d.name)

		// A function that writes nothing, and builtins, widen nothing.
		_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE LOWER(name) <> ''").Scan(&n))
		require.Len(t, cachedIDs(ctx, db, 1, 2, 3), 3, "%s: a read with builtins expired rows", d.name)
	})
}

// A volatile function of an extension (uuid-ossp's uuid_generate_v4) is
// not the application's and writes no rows: calling it expires nothing.
func TestContractExtensionFunction(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "postgres" {
			t.Skip("extensions: PostgreSQL")
		}
		if _, err := db.Exec(`CREATE EXTENSION IF NOT EXISTS "uuid-ossp"`); err != nil {
			t.Skipf("uuid-ossp is not available: %v", err)
		}
		d.seed(t, db, 2)
		ctx := idmap.NewContext(context.Background())
		_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		var id string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT uuid_generate_v4()::text").Scan(&id))
		require.Len(t, cachedIDs(ctx, db, 1, 2), 2, "calling an extension's function expired rows")
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
