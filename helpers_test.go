package idmap_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mattn/go-sqlite3"
	"github.com/ngrok/sqlmw"
	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// counter counts the statements that reach the base driver.
type counter struct {
	sqlmw.NullInterceptor
	n   atomic.Int64
	mu  sync.Mutex
	log []string // protected by mu
}

func (c *counter) note(q string) {
	c.n.Add(1)
	c.mu.Lock()
	c.log = append(c.log, q)
	c.mu.Unlock()
}

// A statement that the driver answers with driver.ErrSkip did not run (it
// comes again through Prepare): it is not counted.

func (c *counter) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, q string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	ctx, r, err := c.NullInterceptor.ConnQueryContext(ctx, conn, q, args)
	if err != driver.ErrSkip {
		c.note(q)
	}
	return ctx, r, err
}

func (c *counter) ConnExecContext(ctx context.Context, conn driver.ExecerContext, q string, args []driver.NamedValue) (driver.Result, error) {
	r, err := c.NullInterceptor.ConnExecContext(ctx, conn, q, args)
	if err != driver.ErrSkip {
		c.note(q)
	}
	return r, err
}

func (c *counter) StmtQueryContext(ctx context.Context, s driver.StmtQueryContext, q string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	c.note(q)
	return c.NullInterceptor.StmtQueryContext(ctx, s, q, args)
}

func (c *counter) StmtExecContext(ctx context.Context, s driver.StmtExecContext, q string, args []driver.NamedValue) (driver.Result, error) {
	c.note(q)
	return c.NullInterceptor.StmtExecContext(ctx, s, q, args)
}

// Queries returns how many statements reached SQLite.
func (c *counter) Queries() int64 { return c.n.Load() }

var countedSeq atomic.Int64

// sqliteDSN returns the DSN (WAL, busy timeout, foreign keys) of a new
// SQLite database file named file in the test's temporary directory.
func sqliteDSN(t testing.TB, file string) string {
	return "file:" + filepath.Join(t.TempDir(), file) + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=1"
}

// openCounted opens a new SQLite database file through idmap, on a base
// driver that counts the statements reaching SQLite.
func openCounted(t testing.TB, opts ...idmap.Option) (*sql.DB, *counter) {
	t.Helper()
	c := &counter{}
	base := fmt.Sprintf("sqlite3-counted-%d", countedSeq.Add(1))
	sql.Register(base, sqlmw.Driver(&sqlite3.SQLiteDriver{}, c))
	dsn := sqliteDSN(t, "test.db")
	db, err := idmap.Open(base, dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, c
}

// openSQLite opens a new SQLite database file through "idmap+sqlite3".
func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	dsn := sqliteDSN(t, "test.db")
	db, err := sql.Open("idmap+sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t testing.TB, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// User is the model most tests use.
type User struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Email  string `db:"email"`
	Visits int    `db:"-"` // temporary attribute
}

func (User) TableName() string { return "users" }

const usersDDL = `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL DEFAULT '')`

func seedUsers(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	mustExec(t, db, usersDDL)
	for i := 1; i <= n; i++ {
		mustExec(t, db, "INSERT INTO users (id, name, email) VALUES (?, ?, ?)", i, fmt.Sprintf("user%d", i), fmt.Sprintf("u%d@example.com", i))
	}
}

// scopedCtx returns a context with a scope of its own if scoped, else one
// without (Gets and Binds then use the shared map).
func scopedCtx(scoped bool) context.Context {
	if scoped {
		return idmap.NewContext(context.Background())
	}
	return context.Background()
}

func queryUsers(t testing.TB, ctx context.Context, q idmap.Querier, query string, args ...any) []*User {
	t.Helper()
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	var us []*User
	if err := idmap.Bind(rows, &us); err != nil {
		t.Fatal(err)
	}
	return us
}

// lockedWriter is a log destination that several goroutines may write to.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// cachedIDs reports which of the given users Cached would serve.
func cachedIDs(ctx context.Context, db *sql.DB, ids ...int64) []int64 {
	var out []int64
	for _, id := range ids {
		if idmap.Cached[User](ctx, db, id) != nil {
			out = append(out, id)
		}
	}
	return out
}

// loadAll loads every user into ctx's map, in key order.
func loadAll(t *testing.T, ctx context.Context, db *sql.DB) []*User {
	t.Helper()
	return queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
}

// Post is a row of posts, whose user_id names a user.
type Post struct {
	ID     int64 `db:"id"`
	UserID int64 `db:"user_id"`
	Title  string
}

func (Post) TableName() string { return "posts" }

// Membership has a composite key.
type Membership struct {
	UserID int64  `db:"user_id,pk"`
	Group  string `db:"grp,pk"`
	Role   string
}

func (Membership) TableName() string { return "memberships" }

// queriers runs f against a *sql.DB, a *sql.Conn and a *sql.Tx of db, in
// the manner of pgx's testWithAllQueryExecModes.
func queriers(t *testing.T, db *sql.DB, f func(t *testing.T, ctx context.Context, q idmap.Querier)) {
	t.Run("DB", func(t *testing.T) { f(t, idmap.NewContext(context.Background()), db) })
	t.Run("Conn", func(t *testing.T) {
		ctx := idmap.NewContext(context.Background())
		c, err := db.Conn(ctx)
		require.NoError(t, err)
		defer c.Close()
		f(t, ctx, c)
	})
	t.Run("Tx", func(t *testing.T) {
		ctx := context.Background()
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback()
		f(t, ctx, tx)
	})
}
