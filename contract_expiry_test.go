package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// Expiry (SPEC.md, Semantics): what a write through the driver expires, on
// every driver. More detailed tests of expiry are in expiry_test.go.

// A write expires the keys it names, else its table; a DELETE by key removes
// the entry (and the rows its cascade deletes); a changed primary key leaves
// nothing under the old key; a schema change flushes the table.
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
