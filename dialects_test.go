package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

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

// Quoted, schema-qualified and differently cased names are the same table.
func TestContractNames(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		ctx := idmap.NewContext(context.Background())
		var schema string
		switch d.dialect {
		case "sqlite":
			schema = "main"
		case "mysql":
			require.NoError(t, db.QueryRow("SELECT DATABASE()").Scan(&schema))
		case "postgres":
			require.NoError(t, db.QueryRow("SELECT current_schema()").Scan(&schema))
		}
		quote := func(s string) string {
			if d.dialect == "mysql" {
				return "`" + s + "`"
			}
			return `"` + s + `"`
		}
		stmts := []string{
			"UPDATE " + schema + ".users SET name = 'a' WHERE id = 1",
			"UPDATE " + quote(schema) + "." + quote("users") + " SET name = 'b' WHERE " + quote("id") + " = 2",
			"/* c */ UPDATE users -- c\n SET name = 'c' WHERE id = 3",
		}
		if d.dialect != "mysql" { // MySQL table names are case sensitive on Linux
			stmts = append(stmts, "UPDATE USERS SET name = 'd' WHERE ID = 1")
		}
		for _, s := range stmts {
			_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
			mustExec(t, db, s)
			fresh := cachedIDs(ctx, db, 1, 2, 3)
			require.Len(t, fresh, 2, "%s: expected exactly one key expired, fresh: %v", s, fresh)
			for _, id := range []int64{1, 2, 3} {
				u, err := idmap.Get[User](ctx, db, id)
				require.NoError(t, err)
				var name string
				require.NoError(t, db.QueryRow(d.q("SELECT name FROM users WHERE id = ?"), id).Scan(&name))
				require.Equal(t, name, u.Name, "%s: stale row %d", s, id)
			}
		}
		_ = strings.ToUpper
	})
}

// Code is keyed by a string column.
type Code struct {
	Code string `db:"code,pk"`
	Note string `db:"note"`
}

func (Code) TableName() string { return "codes" }

// MySQL compares a string column with a number as numbers: WHERE code = 5
// matches '5', '05', '5abc' and '5.0'. A write keyed so expires the table,
// not the key 5; a string argument compares as text and keeps its key.
// Elsewhere a number is compared as text, or not at all.
func TestContractStringKeyNumberArg(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		mustExec(t, db, "CREATE TABLE codes (code VARCHAR(20) PRIMARY KEY, note VARCHAR(20) NOT NULL)")
		for _, c := range []string{"5", "5abc", "5.0", "x"} {
			mustExec(t, db, d.q("INSERT INTO codes (code, note) VALUES (?, ?)"), c, "old")
		}
		ctx := idmap.NewContext(context.Background())
		rows, err := db.QueryContext(ctx, "SELECT code, note FROM codes")
		require.NoError(t, err)
		var all []*Code
		require.NoError(t, idmap.Bind(rows, &all))
		require.Len(t, all, 4)

		upd := d.q("UPDATE codes SET note = 'new' WHERE code = ?")
		if d.dialect == "postgres" {
			upd = "UPDATE codes SET note = 'new' WHERE code = $1::int::text"
		}
		conn, err := db.Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		if d.dialect == "mysql" {
			// Strict mode refuses '5abc' as a number in an UPDATE; a server
			// that is not strict updates it.
			_, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ''")
			require.NoError(t, err)
		}
		for _, arg := range []any{5, 5.0} {
			// Load every row again, then write.
			rows, err := db.QueryContext(ctx, "SELECT code, note FROM codes")
			require.NoError(t, err)
			require.NoError(t, idmap.Bind(rows, &all))
			if _, err := conn.ExecContext(ctx, strings.Replace(upd, "'new'", fmt.Sprintf("'new %v'", arg), 1), arg); err != nil {
				t.Logf("%s does not compare a string column with %T: %v", d.name, arg, err)
				continue
			}
			for _, c := range []string{"5", "5abc", "5.0", "x"} {
				got, err := idmap.Get[Code](ctx, db, c)
				require.NoError(t, err)
				var note string
				require.NoError(t, db.QueryRow(d.q("SELECT note FROM codes WHERE code = ?"), c).Scan(&note))
				require.Equal(t, note, got.Note, "%s: stale row %q after WHERE code = %T(%v)", d.name, c, arg, arg)
			}
		}
	})
}

// A key given as text that the server reads as a number ('5.0', '5e0',
// ' 5 ') matches the row whose integer key is 5 on SQLite and MySQL: the
// write expires that key, or the table.
func TestContractNumericText(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 6)
		ctx := idmap.NewContext(context.Background())
		for i, arg := range []string{"5.0", "5e0", " 4 ", "3.", "+2", "1.0e0", "literal 6.0"} {
			_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
			name := fmt.Sprintf("n%d", i)
			var err error
			if lit, ok := strings.CutPrefix(arg, "literal "); ok {
				_, err = db.ExecContext(ctx, "UPDATE users SET name = '"+name+"' WHERE id = '"+lit+"'")
			} else {
				_, err = db.ExecContext(ctx, d.q("UPDATE users SET name = ? WHERE id = ?"), name, arg)
			}
			if err != nil {
				continue // PostgreSQL refuses '5.0' as a bigint
			}
			for id := int64(1); id <= 6; id++ {
				u, err := idmap.Get[User](ctx, db, id)
				require.NoError(t, err)
				var want string
				require.NoError(t, db.QueryRow(d.q("SELECT name FROM users WHERE id = ?"), id).Scan(&want))
				require.Equal(t, want, u.Name, "%s: stale row %d after WHERE id = %q", d.name, id, arg)
			}
		}
	})
}

// Visit is keyed by a user and a day.
type Visit struct {
	UserID int64     `db:"user_id,pk"`
	Day    time.Time `db:"day,pk"`
	N      int64     `db:"n"`
}

func (Visit) TableName() string { return "visits" }

// A time key given as text ('2026-11-27') matches the row whose key is
// that time: the write expires it, or the table.
func TestContractTimeKeyText(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		typ := map[string]string{"sqlite": "DATETIME", "mysql": "DATETIME", "postgres": "TIMESTAMP"}[d.dialect]
		mustExec(t, db, "CREATE TABLE visits (user_id BIGINT, day "+typ+", n BIGINT NOT NULL, PRIMARY KEY (user_id, day))")
		day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		mustExec(t, db, d.q("INSERT INTO visits (user_id, day, n) VALUES (?, ?, ?)"), 1, day, 1)
		ctx := idmap.NewContext(context.Background())
		rows, err := db.QueryContext(ctx, "SELECT user_id, day, n FROM visits")
		require.NoError(t, err)
		var vs []*Visit
		require.NoError(t, idmap.Bind(rows, &vs))
		require.Len(t, vs, 1)

		text := day.Format("2006-01-02 15:04:05")
		if d.dialect == "sqlite" {
			var stored string
			require.NoError(t, db.QueryRow("SELECT CAST(day AS TEXT) FROM visits").Scan(&stored))
			text = stored // the text SQLite compares with
		}
		res, err := db.ExecContext(ctx, d.q("UPDATE visits SET n = n + 1 WHERE user_id = ? AND day = ?"), 1, text)
		require.NoError(t, err)
		if n, _ := res.RowsAffected(); n != 1 {
			t.Skipf("%s: WHERE day = %q matched %d rows", d.name, text, n)
		}
		got, err := idmap.Get[Visit](ctx, db, 1, day)
		require.NoError(t, err)
		require.Equal(t, int64(2), got.N, "%s: stale row after WHERE day = %q", d.name, text)
	})
}

// TenantItem is keyed by a tenant (text) and a number.
type TenantItem struct {
	Tenant string `db:"tenant,pk"`
	ID     int64  `db:"id,pk"`
	Name   string `db:"name"`
}

func (TenantItem) TableName() string { return "tenant_items" }

// The rules for text and time key columns hold per column: a write keyed by
// tenant and number expires that key alone (but on MySQL, whose collations
// compare text in ways idmap does not follow: there, the table).
func TestContractMixedKeyPrecision(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		mustExec(t, db, "CREATE TABLE tenant_items (tenant VARCHAR(20), id BIGINT, name VARCHAR(20) NOT NULL, PRIMARY KEY (tenant, id))")
		mustExec(t, db, d.q("INSERT INTO tenant_items (tenant, id, name) VALUES (?, ?, ?), (?, ?, ?)"), "acme", 1, "a", "acme", 2, "b")
		ctx := idmap.NewContext(context.Background())
		rows, err := db.QueryContext(ctx, "SELECT tenant, id, name FROM tenant_items")
		require.NoError(t, err)
		var all []*TenantItem
		require.NoError(t, idmap.Bind(rows, &all))
		mustExec(t, db, d.q("UPDATE tenant_items SET name = ? WHERE tenant = ? AND id = ?"), "c", "acme", 2)
		if d.dialect != "mysql" { // MySQL's collations: a text key widens there
			require.NotNil(t, idmap.Cached[TenantItem](ctx, db, "acme", 1), "%s: the other key was expired too", d.name)
		}
		require.Nil(t, idmap.Cached[TenantItem](ctx, db, "acme", 2), "%s: the written key is still fresh", d.name)
	})
}

// A write through a view changes the rows of its table: it expires them.
func TestContractWriteThroughView(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		mustExec(t, db, "CREATE VIEW users_v AS SELECT id, name FROM users")
		if d.dialect == "sqlite" { // SQLite's views take writes only through triggers
			mustExec(t, db, "CREATE TRIGGER users_v_upd INSTEAD OF UPDATE ON users_v BEGIN UPDATE users SET name = NEW.name WHERE id = OLD.id; END")
		}
		ctx := idmap.NewContext(context.Background())
		_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		mustExec(t, db, d.q("UPDATE users_v SET name = ? WHERE id = ?"), "viewed", 2)
		u, err := idmap.Get[User](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "viewed", u.Name, "%s: stale row after an UPDATE through a view", d.name)
	})
}

// Event is mapped on a PostgreSQL partitioned table, EventPart on one of
// its partitions.
type (
	Event struct {
		ID   int64  `db:"id,pk"`
		Name string `db:"name"`
	}
	EventPart struct {
		ID   int64  `db:"id,pk"`
		Name string `db:"name"`
	}
)

func (Event) TableName() string     { return "events" }
func (EventPart) TableName() string { return "events_low" }

// A write to a partition changes the rows its partitioned table shows, and
// a write to the partitioned table those of the partition.
func TestContractPartitions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "postgres" {
			t.Skip("table inheritance and partitions: PostgreSQL")
		}
		mustExec(t, db, "CREATE TABLE events (id BIGINT PRIMARY KEY, name TEXT NOT NULL) PARTITION BY RANGE (id)")
		mustExec(t, db, "CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (100)")
		mustExec(t, db, "INSERT INTO events (id, name) VALUES (1, 'a'), (2, 'b')")
		ctx := idmap.NewContext(context.Background())
		load := func() {
			rows, err := db.QueryContext(ctx, "SELECT id, name FROM events")
			require.NoError(t, err)
			var es []*Event
			require.NoError(t, idmap.Bind(rows, &es))
			rows, err = db.QueryContext(ctx, "SELECT id, name FROM events_low")
			require.NoError(t, err)
			var ps []*EventPart
			require.NoError(t, idmap.Bind(rows, &ps))
		}
		load()
		mustExec(t, db, "UPDATE events_low SET name = 'through the partition' WHERE id = $1", 1)
		e, err := idmap.Get[Event](ctx, db, 1)
		require.NoError(t, err)
		require.Equal(t, "through the partition", e.Name, "stale partitioned table after a write to its partition")
		load()
		mustExec(t, db, "UPDATE events SET name = 'through the table' WHERE id = $1", 2)
		require.NotNil(t, idmap.Cached[Event](ctx, db, 1), "a write by key to the partitioned table expired its other rows")
		p, err := idmap.Get[EventPart](ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, "through the table", p.Name, "stale partition after a write to its table")
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

// An upsert may update the row it conflicts with on any unique key, not
// only on the key its values give: that row is expired too.
func TestContractUpsertOtherUniqueKey(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		if d.dialect == "postgres" {
			mustExec(t, db, "ALTER TABLE users ADD CONSTRAINT users_email UNIQUE (email)")
		} else {
			mustExec(t, db, "CREATE UNIQUE INDEX users_email ON users (email)")
		}
		var email string
		require.NoError(t, db.QueryRow(d.q("SELECT email FROM users WHERE id = ?"), 2).Scan(&email))
		stmts := map[string][]string{
			"mysql": {"INSERT INTO users (id, name, email) VALUES (99, 'upserted', ?) ON DUPLICATE KEY UPDATE name = VALUES(name)",
				"INSERT INTO users (id, name, email) VALUES (99, 'upserted2', ?) AS n ON DUPLICATE KEY UPDATE name = n.name"},
			"postgres": {"INSERT INTO users (id, name, email) VALUES (99, 'upserted', $1) ON CONFLICT (email) DO UPDATE SET name = excluded.name",
				"INSERT INTO users (id, name, email) VALUES (99, 'upserted2', $1) ON CONFLICT ON CONSTRAINT users_email DO UPDATE SET name = excluded.name"},
			"sqlite": {"INSERT INTO users (id, name, email) VALUES (99, 'upserted', ?) ON CONFLICT (email) DO UPDATE SET name = excluded.name",
				"INSERT INTO users (id, name, email) VALUES (99, 'upserted2', ?) ON CONFLICT DO UPDATE SET name = excluded.name",
				"INSERT OR REPLACE INTO users (id, name, email) VALUES (98, 'replaced', ?)"},
		}[d.dialect]
		ctx := idmap.NewContext(context.Background())
		writeEach(t, ctx, db, d, stmts, []any{email}, 1, 2, 3)
	})
}

// A condition on another table's column in a joined UPDATE or DELETE
// (posts.id = 1) says nothing of the target's keys.
func TestContractJoinedWrite(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		mustExec(t, db, "UPDATE posts SET user_id = 3 WHERE id = 1")
		stmts := map[string][]string{
			"mysql": {"UPDATE users JOIN posts ON posts.user_id = users.id SET users.name = 'joined' WHERE posts.id = 1",
				"UPDATE users, posts SET users.name = 'joined2' WHERE posts.user_id = users.id AND posts.id = 1",
				"DELETE users FROM users JOIN posts ON posts.user_id = users.id WHERE posts.id = 1"},
			"postgres": {"UPDATE users SET name = 'joined' FROM posts WHERE posts.user_id = users.id AND posts.id = 1",
				"UPDATE users u SET name = 'joined2' FROM posts p WHERE p.user_id = u.id AND p.id = 1",
				"DELETE FROM users USING posts WHERE posts.user_id = users.id AND posts.id = 1"},
			"sqlite": {"UPDATE users SET name = 'joined' FROM posts WHERE posts.user_id = users.id AND posts.id = 1",
				"UPDATE users AS u SET name = 'joined2' FROM posts AS p WHERE p.user_id = u.id AND p.id = 1"},
		}[d.dialect]
		ctx := idmap.NewContext(context.Background())
		writeEach(t, ctx, db, d, stmts, nil, 1, 2, 3)
	})
}

// Modifiers between the verb and the table (MySQL's LOW_PRIORITY, IGNORE,
// QUICK, DELAYED; PostgreSQL's ONLY) name no table of their own.
func TestContractWriteModifiers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 4)
		stmts := map[string][]string{
			"mysql": {"UPDATE LOW_PRIORITY users SET name = 'm1' WHERE id = 1",
				"UPDATE IGNORE users SET name = 'm2' WHERE id = 2",
				"UPDATE LOW_PRIORITY IGNORE users SET name = 'm3' WHERE id = 3",
				"DELETE LOW_PRIORITY QUICK IGNORE FROM users WHERE id = 4"},
			"postgres": {"UPDATE ONLY users SET name = 'p1' WHERE id = 1",
				"UPDATE ONLY users AS u SET name = 'p2' WHERE u.id = 2",
				"DELETE FROM ONLY users WHERE id = 4"},
			"sqlite": {"UPDATE OR IGNORE users SET name = 's1' WHERE id = 1",
				"UPDATE OR ROLLBACK users SET name = 's2' WHERE id = 2",
				"INSERT OR IGNORE INTO users (id, name) VALUES (1, 'not inserted')"},
		}[d.dialect]
		ctx := idmap.NewContext(context.Background())
		for _, s := range stmts {
			_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
			mustExec(t, db, s)
			requireServed(t, ctx, db, d, s, 1, 2, 3, 4)
		}
	})
}

// writeEach runs each statement (with args) after loading every user into
// ctx's scope, then checks with requireServed. A statement the engine
// refuses is logged and skipped.
func writeEach(t *testing.T, ctx context.Context, db *sql.DB, d *testDriver, stmts []string, args []any, ids ...int64) {
	t.Helper()
	for _, s := range stmts {
		_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		if _, err := db.ExecContext(ctx, s, args...); err != nil {
			t.Logf("%s: %v", s, err)
			continue
		}
		requireServed(t, ctx, db, d, s, ids...)
	}
}

// requireServed checks that Get serves each user as the database holds it
// after the statement s: its current name, or sql.ErrNoRows once deleted.
func requireServed(t *testing.T, ctx context.Context, db *sql.DB, d *testDriver, s string, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		var name string
		err := db.QueryRow(d.q("SELECT name FROM users WHERE id = ?"), id).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			_, gerr := idmap.Get[User](ctx, db, id)
			require.ErrorIs(t, gerr, sql.ErrNoRows, "%s: a deleted row is still served after %s", d.name, s)
			continue
		}
		require.NoError(t, err)
		u, err := idmap.Get[User](ctx, db, id)
		require.NoError(t, err)
		require.Equal(t, name, u.Name, "%s: stale row %d after %s", d.name, id, s)
	}
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

// Negations and other comparisons name no key: a write through them
// reaches rows the condition's value does not name.
func TestContractNegatedConditions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		stmts := []string{
			"UPDATE users SET name = 'n1' WHERE NOT id = 1",
			"UPDATE users SET name = 'n2' WHERE NOT (id = 2)",
			"UPDATE users SET name = 'n3' WHERE id <> 3",
			"UPDATE users SET name = 'n4' WHERE id != 1",
			"UPDATE users SET name = 'n5' WHERE id NOT IN (2)",
			"UPDATE users SET name = 'n6' WHERE NOT id IN (3)",
			"UPDATE users SET name = 'n7' WHERE (id = 1) IS NOT TRUE",
			"UPDATE users SET name = 'n8' WHERE id = 2 IS FALSE",
			"UPDATE users SET name = 'n9' WHERE id >= 2",
			"UPDATE users SET name = 'n10' WHERE id BETWEEN 1 AND 3",
			"UPDATE users SET name = 'n11' WHERE id = 1 OR id = 2",
			"UPDATE users SET name = 'n12' WHERE id IN (1) OR name = 'n11'",
			"UPDATE users SET name = 'n13' WHERE CASE WHEN id = 1 THEN FALSE ELSE TRUE END",
			"UPDATE users SET name = 'n14' WHERE id = 1 = FALSE",
			"UPDATE users SET name = 'n15' WHERE (id = 2) = (1 = 0)",
		}
		if d.dialect == "mysql" {
			stmts = append(stmts,
				"UPDATE users SET name = 'm1' WHERE id = 1 XOR name = 'n15'",
				"UPDATE users SET name = 'm2' WHERE id = 1 || id = 2",
				"UPDATE users SET name = 'm3' WHERE !(id = 3)",
				"UPDATE users SET name = 'm4' WHERE id = 1 || TRUE",
				"UPDATE users SET name = 'm5' WHERE NOT id = 1 && NOT id = 2",
				"UPDATE users SET name = 'm6' WHERE id = 2 IS NOT TRUE",
				"UPDATE users SET name = 'm7' WHERE id = 2 - 1 + 1 - 1",
				"UPDATE users SET name = 'm8' WHERE id = 2 DIV 2",
				"UPDATE users SET name = 'm9' WHERE id = 3 MOD 2")
		}
		ctx := idmap.NewContext(context.Background())
		writeEach(t, ctx, db, d, stmts, nil, 1, 2, 3)
	})
}

// Literal keys as the server reads them: signs, hexadecimal and bit
// literals, exponents, booleans.
func TestContractLiteralKeys(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		for _, id := range []int{-1, 16, 0} {
			mustExec(t, db, d.q("INSERT INTO users (id, name) VALUES (?, ?)"), id, fmt.Sprintf("user%d", id))
		}
		stmts := []string{
			"UPDATE users SET name = 'l1' WHERE id = -1",
			"UPDATE users SET name = 'l2' WHERE id = - 1",
			"UPDATE users SET name = 'l3' WHERE id = +2",
			"UPDATE users SET name = 'l4' WHERE id = 1e0",
			"UPDATE users SET name = 'l5' WHERE id = 2.0",
			"UPDATE users SET name = 'l6' WHERE id = -(-3)",
			"UPDATE users SET name = 'l7' WHERE id = TRUE",
			"UPDATE users SET name = 'l8' WHERE id = FALSE",
			"UPDATE users SET name = 'l9' WHERE id = 0x10",
			"UPDATE users SET name = 'l10' WHERE id = 1_6",
			"UPDATE users SET name = 'l11' WHERE id = 0b11",
			"UPDATE users SET name = 'l12' WHERE id = b'11'",
			"UPDATE users SET name = 'l13' WHERE id = X'10'",
			"UPDATE users SET name = 'l14' WHERE id = 16.",
			"UPDATE users SET name = 'l15' WHERE id = .16e2",
			"UPDATE users SET name = 'l16' WHERE id = 0o20",
			"UPDATE users SET name = 'l17' WHERE id = 00016",
		}
		ctx := idmap.NewContext(context.Background())
		writeEach(t, ctx, db, d, stmts, nil, -1, 0, 1, 2, 3, 16)
	})
}

// A time key given as a time.Time in another zone: whichever row the
// server matches, it is not served stale.
func TestContractTimeKeyZones(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		typ := map[string]string{"sqlite": "DATETIME", "mysql": "DATETIME", "postgres": "TIMESTAMP"}[d.dialect]
		mustExec(t, db, "CREATE TABLE visits (user_id BIGINT, day "+typ+", n BIGINT NOT NULL, PRIMARY KEY (user_id, day))")
		day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		mustExec(t, db, d.q("INSERT INTO visits (user_id, day, n) VALUES (?, ?, ?)"), 1, day, 1)
		ctx := idmap.NewContext(context.Background())
		plus5 := time.FixedZone("+05", 5*3600)
		for i, arg := range []time.Time{day.In(plus5), time.Date(2026, 11, 27, 0, 0, 0, 0, plus5)} {
			rows, err := db.QueryContext(ctx, "SELECT user_id, day, n FROM visits")
			require.NoError(t, err)
			var vs []*Visit
			require.NoError(t, idmap.Bind(rows, &vs))
			_, err = db.ExecContext(ctx, d.q("UPDATE visits SET n = n + 1 WHERE user_id = ? AND day = ?"), 1, arg)
			require.NoError(t, err)
			var n int64
			require.NoError(t, db.QueryRow(d.q("SELECT n FROM visits WHERE user_id = ?"), 1).Scan(&n))
			got, err := idmap.Get[Visit](ctx, db, 1, vs[0].Day)
			require.NoError(t, err)
			require.Equal(t, n, got.N, "%s: stale row after WHERE day = %v (case %d)", d.name, arg, i)
		}
	})
}

// Account is keyed by a UUID held as text.
type Account struct {
	ID   string `db:"id,pk"`
	Name string `db:"name"`
}

func (Account) TableName() string { return "accounts" }

// PostgreSQL reads a uuid in several spellings (upper case, braces, no
// hyphens): a write that names the key in any of them expires it.
func TestContractUUIDSpellings(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "postgres" {
			t.Skip("the uuid type: PostgreSQL")
		}
		mustExec(t, db, "CREATE TABLE accounts (id UUID PRIMARY KEY, name TEXT NOT NULL)")
		const id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
		mustExec(t, db, "INSERT INTO accounts (id, name) VALUES ($1, 'a')", id)
		ctx := idmap.NewContext(context.Background())
		for i, spelling := range []string{strings.ToUpper(id), "{" + id + "}", strings.ReplaceAll(id, "-", ""), "a0eebc999c0b4ef8bb6d6bb9bd380a11"[:4] + "-" + "a0eebc999c0b4ef8bb6d6bb9bd380a11"[4:]} {
			rows, err := db.QueryContext(ctx, "SELECT id, name FROM accounts")
			require.NoError(t, err)
			var as []*Account
			require.NoError(t, idmap.Bind(rows, &as))
			name := fmt.Sprintf("n%d", i)
			res, err := db.ExecContext(ctx, "UPDATE accounts SET name = $1 WHERE id = $2", name, spelling)
			require.NoError(t, err)
			if n, _ := res.RowsAffected(); n != 1 {
				t.Logf("%q matched %d rows", spelling, n)
				continue
			}
			got, err := idmap.Get[Account](ctx, db, id)
			require.NoError(t, err)
			require.Equal(t, name, got.Name, "%s: stale row after WHERE id = %q", d.name, spelling)
		}
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
