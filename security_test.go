package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// The three exploits of issue 12, item 1, in double-quote (SQLite,
// PostgreSQL) and backtick (MySQL) spellings: an identifier part that
// starts with a quote character was passed through as if it were one
// quoted name.

type injDropQ struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (injDropQ) TableName() string { return `"t"; DROP TABLE other; --` }

type injDropB struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (injDropB) TableName() string { return "`t`; DROP TABLE other; -- " }

type injUnionQ struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (injUnionQ) TableName() string {
	return `"t" WHERE 0 = 1 UNION SELECT 7, secret FROM secrets --`
}

type injUnionB struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (injUnionB) TableName() string {
	return "`t` WHERE 0 = 1 UNION SELECT 7, secret FROM secrets -- "
}

type injTagQ struct {
	ID   int64  `db:"id"`
	Name string `db:"\"name\" || (SELECT secret FROM secrets)"`
}

func (injTagQ) TableName() string { return "t" }

type injTagB struct {
	ID   int64  `db:"id"`
	Name string "db:\"`name` || (SELECT secret FROM secrets)\""
}

func (injTagB) TableName() string { return "t" }

// requireRefusedModel checks that err is idmap's refusal of a type's
// names, naming the type (and what is at fault).
func requireRefusedModel(t *testing.T, err error, typ, what string) {
	t.Helper()
	require.Error(t, err)
	require.True(t, errors.Is(err, idmap.ErrModel), "%v: want ErrModel", err)
	require.True(t, strings.HasPrefix(err.Error(), "idmap: "), "%q", err)
	require.Contains(t, err.Error(), typ)
	require.Contains(t, err.Error(), what)
}

func TestInjectionThroughNames(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, _ *counter) {
		ctx := idmap.NewContext(context.Background())
		mustExec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(100))")
		mustExec(t, db, "CREATE TABLE other (id INTEGER PRIMARY KEY)")
		mustExec(t, db, "CREATE TABLE secrets (id INTEGER PRIMARY KEY, secret VARCHAR(100))")
		mustExec(t, db, "INSERT INTO t (id, name) VALUES (1, 'alice')")
		mustExec(t, db, "INSERT INTO t (id, name) VALUES (7, 'bob')")
		mustExec(t, db, "INSERT INTO secrets (id, secret) VALUES (7, 'hunter2')")
		otherIntact := func() {
			t.Helper()
			var n int
			require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM other").Scan(&n), "table other was dropped")
		}
		type attempt struct {
			name, typ, what string
			get             func() (any, error)
			many            func() (any, error)
			cached          func() bool
		}
		var attempts []attempt
		if d.dialect == "mysql" {
			attempts = []attempt{
				{"drop", "injDropB", "table name",
					func() (any, error) { return idmap.Get[injDropB](ctx, db, 1) },
					func() (any, error) { return idmap.GetMany[injDropB](ctx, db, 1, 7) },
					func() bool { return idmap.Cached[injDropB](ctx, db, 1) != nil }},
				{"union", "injUnionB", "table name",
					func() (any, error) { return idmap.Get[injUnionB](ctx, db, 7) },
					func() (any, error) { return idmap.GetMany[injUnionB](ctx, db, 7) },
					func() bool { return idmap.Cached[injUnionB](ctx, db, 7) != nil }},
				{"tag", "injTagB", "Name",
					func() (any, error) { return idmap.Get[injTagB](ctx, db, 1) },
					func() (any, error) { return idmap.GetMany[injTagB](ctx, db, 1) },
					func() bool { return idmap.Cached[injTagB](ctx, db, 1) != nil }},
			}
		} else {
			attempts = []attempt{
				{"drop", "injDropQ", "table name",
					func() (any, error) { return idmap.Get[injDropQ](ctx, db, 1) },
					func() (any, error) { return idmap.GetMany[injDropQ](ctx, db, 1, 7) },
					func() bool { return idmap.Cached[injDropQ](ctx, db, 1) != nil }},
				{"union", "injUnionQ", "table name",
					func() (any, error) { return idmap.Get[injUnionQ](ctx, db, 7) },
					func() (any, error) { return idmap.GetMany[injUnionQ](ctx, db, 7) },
					func() bool { return idmap.Cached[injUnionQ](ctx, db, 7) != nil }},
				{"tag", "injTagQ", "Name",
					func() (any, error) { return idmap.Get[injTagQ](ctx, db, 1) },
					func() (any, error) { return idmap.GetMany[injTagQ](ctx, db, 1) },
					func() bool { return idmap.Cached[injTagQ](ctx, db, 1) != nil }},
			}
		}
		for _, a := range attempts {
			v, err := a.get()
			requireRefusedModel(t, err, a.typ, a.what)
			require.NotContains(t, fmt.Sprintf("%+v", v), "hunter2", a.name)
			otherIntact()
			_, err = a.many()
			requireRefusedModel(t, err, a.typ, a.what)
			otherIntact()
			require.False(t, a.cached(), "%s: something was cached", a.name)
		}
		// A Bind into such a type is refused too, before anything is read.
		rows, err := db.QueryContext(ctx, "SELECT id, name FROM t")
		require.NoError(t, err)
		var objs []*injDropQ
		requireRefusedModel(t, idmap.Bind(rows, &objs), "injDropQ", "table name")
		otherIntact()
	})
}

// Model refuses a bad Table name or db tag at once: it panics, with an
// idmap: message naming the type and field.
type injModel struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

type injModelTag struct {
	ID   int64  `db:"id"`
	Name string `db:"name; DROP TABLE other"`
}

func TestModelRefusesBadNames(t *testing.T) {
	panicOf := func(f func()) (msg string) {
		defer func() {
			if r := recover(); r != nil {
				msg = fmt.Sprint(r)
			}
		}()
		f()
		return ""
	}
	for _, table := range []string{
		`"t"; DROP TABLE other; --`,
		`"t" WHERE 0 = 1 UNION SELECT 7, secret FROM secrets --`,
		"t -- comment", "t/**/", "t;", "a.b.c.d", `"t`, "[t", "`t` x", "",
	} {
		msg := panicOf(func() { idmap.Model[injModel](idmap.Table(table)) })
		require.True(t, strings.HasPrefix(msg, "idmap: "), "Table(%q): panic %q", table, msg)
		require.Contains(t, msg, "injModel", "Table(%q)", table)
	}
	msg := panicOf(func() { idmap.Model[injModelTag](idmap.Table("t")) })
	require.True(t, strings.HasPrefix(msg, "idmap: "), "panic %q", msg)
	require.Contains(t, msg, "injModelTag.Name")
	require.Contains(t, msg, "column name")
}

// Quoted names are accepted, in any of the three quotings, and written for
// the dialect; a write through the driver to the quoted table expires what
// Get loaded from it.
type quotedItem struct {
	ID   int64  `db:"\"Item Id\",pk"`
	Note string `db:"[note]"`
}

func (quotedItem) TableName() string { return `"Order Items"` }

func TestQuotedNames(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, _ *counter) {
		q := func(s string) string {
			if d.dialect == "mysql" {
				return "`" + s + "`"
			}
			return `"` + s + `"`
		}
		mustExec(t, db, "CREATE TABLE "+q("Order Items")+" ("+q("Item Id")+" INTEGER PRIMARY KEY, note VARCHAR(100))")
		mustExec(t, db, "INSERT INTO "+q("Order Items")+" VALUES (1, 'a'), (2, 'b')")
		ctx := idmap.NewContext(context.Background())
		it, err := idmap.Get[quotedItem](ctx, db, 1)
		require.NoError(t, err)
		require.Equal(t, "a", it.Note)
		items, err := idmap.GetMany[quotedItem](ctx, db, 1, 2)
		require.NoError(t, err)
		require.Same(t, it, items[0])
		require.Equal(t, "b", items[1].Note)
		require.Same(t, it, idmap.Cached[quotedItem](ctx, db, 1))
		mustExec(t, db, d.q("UPDATE "+q("Order Items")+" SET note = 'c' WHERE "+q("Item Id")+" = ?"), 1)
		require.Nil(t, idmap.Cached[quotedItem](ctx, db, 1), "a write to the quoted table did not expire its row")
		it2, err := idmap.Get[quotedItem](ctx, db, 1)
		require.NoError(t, err)
		require.Same(t, it, it2)
		require.Equal(t, "c", it2.Note)
	})
}

// Issue 12, item 5: a result with two columns for one field is refused,
// as a column with no field is, on the path where Bind stores values
// itself and on the one where Rows.Scan does; nothing is cached.
type dupScanned struct {
	ID    int64          `db:"id"`
	Name  sql.NullString `db:"name"`
	Email string         `db:"email"`
}

func (dupScanned) TableName() string { return "users" }

func TestDuplicateResultColumns(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, _ *counter) {
		d.seed(t, db, 2)
		for _, query := range []string{
			"SELECT id, name, upper(name) AS name FROM users",
			"SELECT id, name, email, name FROM users",
			"SELECT id, name, upper(name) AS NAME FROM users",
			"SELECT id, id, name FROM users",
		} {
			ctx := idmap.NewContext(context.Background())
			check := func(err error) {
				t.Helper()
				require.Error(t, err, query)
				require.True(t, errors.Is(err, idmap.ErrDuplicateColumn), "%s: %v", query, err)
				require.True(t, errors.Is(err, idmap.ErrNoField), "%s: %v", query, err)
				require.True(t, strings.HasPrefix(err.Error(), "idmap: "), "%s: %v", query, err)
				require.Contains(t, err.Error(), "name", query)
			}
			rows, err := db.QueryContext(ctx, query)
			require.NoError(t, err)
			var us []*User
			check(idmap.Bind(rows, &us))
			require.Nil(t, us)
			require.Nil(t, idmap.Cached[User](ctx, db, 1))

			rows, err = db.QueryContext(ctx, query)
			require.NoError(t, err)
			var ds []*dupScanned
			check(idmap.Bind(rows, &ds))
			require.Nil(t, idmap.Cached[dupScanned](ctx, db, 1))

			// An unmapped type too: the last column would win.
			type row struct {
				ID    int64
				Name  string
				Email string
			}
			rows, err = db.QueryContext(ctx, query)
			require.NoError(t, err)
			var rs []row
			check(idmap.Bind(rows, &rs))
		}
	})
}

// Issue 12, item 6: idmap is never stacked on idmap. Each layer would see
// every statement (a write could count its expiry twice), and Unwrap would
// not reach the base connection.
type sqliteConnector struct{ dsn string }

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	return (&sqlite3.SQLiteDriver{}).Open(c.dsn)
}
func (c sqliteConnector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }

func TestNoStackedIdmap(t *testing.T) {
	stacked := idmap.Register("idmap+sqlite3")
	require.Equal(t, "idmap+idmap+sqlite3", stacked)
	opens := map[string]func(dsn string) (*sql.DB, error){
		"Open(idmap+sqlite3)": func(dsn string) (*sql.DB, error) { return idmap.Open("idmap+sqlite3", dsn) },
		"sql.Open(idmap+idmap+sqlite3)": func(dsn string) (*sql.DB, error) {
			return sql.Open(stacked, dsn)
		},
		"Open(Register(idmap+sqlite3))": func(dsn string) (*sql.DB, error) { return idmap.Open(stacked, dsn) },
		"NewConnector(idmap connector)": func(dsn string) (*sql.DB, error) {
			inner := idmap.NewConnector(sqliteConnector{dsn}, idmap.Name(dsn))
			return sql.OpenDB(idmap.NewConnector(inner, idmap.Name(dsn))), nil
		},
	}
	for name, open := range opens {
		t.Run(name, func(t *testing.T) {
			dsn := "file:" + filepath.Join(t.TempDir(), "t.db") + "?_busy_timeout=10000"
			db, err := open(dsn)
			require.NoError(t, err)
			defer db.Close()
			require.Equal(t, dsn, idmap.NameOf(db))
			// One layer: the base connection is one Unwrap away
			// (docs/sqlite.md, "The base driver's connection").
			conn, err := db.Conn(context.Background())
			require.NoError(t, err)
			require.NoError(t, conn.Raw(func(dc any) error {
				u, ok := dc.(interface{ Unwrap() driver.Conn })
				require.True(t, ok, "%T has no Unwrap", dc)
				_, ok = u.Unwrap().(*sqlite3.SQLiteConn)
				require.True(t, ok, "Unwrap gives %T, not the base connection", u.Unwrap())
				return nil
			}))
			conn.Close()
			seedUsers(t, db, 2)
			ctx := idmap.NewContext(context.Background())
			_, err = idmap.Get[User](ctx, db, 1)
			require.NoError(t, err)
			before, ok := idmap.StatsOf(db)
			require.True(t, ok)
			mustExec(t, db, "UPDATE users SET name = 'x' WHERE id = 1")
			after, _ := idmap.StatsOf(db)
			require.Equal(t, uint64(1), after.Expiries.Keys-before.Expiries.Keys, "one write, expiries counted %d times", after.Expiries.Keys-before.Expiries.Keys)
			u, err := idmap.Get[User](ctx, db, 1)
			require.NoError(t, err)
			require.Equal(t, "x", u.Name)
		})
	}
}

// A TableName method on the pointer receiver maps the type as one on the
// value does: Model, Get, GetMany, Bind, Cached, Intern.
type ptrNamed struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (*ptrNamed) TableName() string { return "users" }

type ptrNamedModel struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (*ptrNamedModel) TableName() string { return "users" }

func TestPointerReceiverTableName(t *testing.T) {
	idmap.Model[ptrNamedModel]()
	db := openSQLite(t)
	seedUsers(t, db, 3)
	ctx := idmap.NewContext(context.Background())
	p, err := idmap.Get[ptrNamed](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "user1", p.Name)
	ps, err := idmap.GetMany[ptrNamed](ctx, db, 1, 2)
	require.NoError(t, err)
	require.Same(t, p, ps[0])
	rows, err := db.QueryContext(ctx, "SELECT id, name FROM users WHERE id = 1")
	require.NoError(t, err)
	var b *ptrNamed
	require.NoError(t, idmap.Bind(rows, &b))
	require.Same(t, p, b)
	require.Same(t, p, idmap.Cached[ptrNamed](ctx, db, 1))
	objs := []*ptrNamed{{ID: 1, Name: "other"}, {ID: 3, Name: "user3"}}
	require.NoError(t, idmap.Intern(ctx, db, objs))
	require.Same(t, p, objs[0])
	m, err := idmap.Get[ptrNamedModel](ctx, db, 2)
	require.NoError(t, err)
	require.Equal(t, "user2", m.Name)
	// Held by value, it is a mapped type in Bind's eyes.
	rows, err = db.QueryContext(ctx, "SELECT id, name FROM users")
	require.NoError(t, err)
	var vals []ptrNamed
	err = idmap.Bind(rows, &vals)
	require.ErrorIs(t, err, idmap.ErrBadDestination)
}
