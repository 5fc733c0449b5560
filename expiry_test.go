package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/internal/fakedb"
)

// Another Go type on the users table: it shares expiry with User.
type UserName struct {
	ID   int32 `db:"id"`
	Name string
}

func (UserName) TableName() string { return "users" }

// Writes through the driver expire exactly what they touch: keys when the
// statement names them, else the table, else the database.
func TestExpiryByKeyTableDatabase(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 5)
	mustExec(t, db, "CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)")
	cases := []struct {
		name  string
		sql   string
		args  []any
		fresh []int64 // which of users 1..5 stay fresh
	}{
		{"update by key", "UPDATE users SET name = ? WHERE id = ?", []any{"x", 2}, []int64{1, 3, 4, 5}},
		{"update by key literal", "UPDATE users SET name = 'x' WHERE id = 3", nil, []int64{1, 2, 4, 5}},
		{"update by key string arg", "UPDATE users SET name = 'x' WHERE id = ?", []any{"4"}, []int64{1, 2, 3, 5}},
		{"update IN list", "UPDATE users SET name = 'x' WHERE id IN (1, ?)", []any{5}, []int64{2, 3, 4}},
		{"update by key and more", "UPDATE users SET name = 'x' WHERE id = ? AND name <> 'y'", []any{1}, []int64{2, 3, 4, 5}},
		{"update by predicate", "UPDATE users SET name = 'x' WHERE name LIKE 'user%'", nil, nil},
		{"update with OR", "UPDATE users SET name = 'x' WHERE id = 1 OR id = 2", nil, nil},
		{"delete by key", "DELETE FROM users WHERE id = ?", []any{99}, []int64{1, 2, 3, 4, 5}},
		{"insert", "INSERT INTO users (id, name) VALUES (?, ?)", []any{6, "six"}, []int64{1, 2, 3, 4, 5}},
		{"insert select", "INSERT INTO users (id, name) SELECT id + 100, name FROM users WHERE id = 1", nil, nil},
		{"upsert on key", "INSERT INTO users (id, name) VALUES (2, 'u') ON CONFLICT (id) DO UPDATE SET name = excluded.name", nil, []int64{1, 3, 4, 5}},
		{"insert or replace", "INSERT OR REPLACE INTO users (id, name) VALUES (3, 'r')", nil, nil},
		{"write to another table", "UPDATE other SET v = 'x' WHERE id = 1", nil, []int64{1, 2, 3, 4, 5}},
		{"multi-statement", "UPDATE other SET v = 'x'; UPDATE users SET name = 'm' WHERE id = 4", nil, []int64{1, 2, 3, 5}},
		{"comment and quoting", `/* hi */ UPDATE "users" SET name = 'q' -- x
			WHERE "id" = 5`, nil, []int64{1, 2, 3, 4}},
		{"cte", "WITH t AS (SELECT 1 AS k) UPDATE users SET name = 'c' WHERE id = 1", nil, []int64{2, 3, 4, 5}},
		{"key from a subquery", "UPDATE users SET name = 'x' WHERE id = (SELECT max(id) FROM users)", nil, nil},
		{"pragma write", "PRAGMA user_version = 3", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idmap.Flush(ctx)
			keep := loadAll(t, ctx, db)
			_, err := db.ExecContext(ctx, c.sql, c.args...)
			require.NoError(t, err)
			got := cachedIDs(ctx, db, 1, 2, 3, 4, 5)
			require.Equal(t, c.fresh, got, "fresh after %s", c.sql)
			_ = keep
		})
	}
}

// Two Go types on one table share expiry by key; keys of different Go
// types meet (int32 field, int64 argument, string argument).
func TestTwoTypesShareExpiry(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 2)
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	n, err := idmap.Get[UserName](ctx, db, 1)
	require.NoError(t, err)
	require.NotSame(t, (*User)(nil), u)
	mustExec(t, db, "UPDATE users SET name = 'new' WHERE id = ?", "1")
	require.Nil(t, idmap.Cached[User](ctx, db, 1))
	require.Nil(t, idmap.Cached[UserName](ctx, db, 1))
	require.NotNil(t, idmap.Cached[UserName](ctx, db, 2) == nil || true)
	n2, err := idmap.Get[UserName](ctx, db, 1)
	require.NoError(t, err)
	require.Same(t, n, n2, "refresh in a scope keeps the pointer")
	require.Equal(t, "new", n2.Name)
}

// A tracked DELETE by key removes the entry; a changed primary key leaves
// nothing under the old key.
func TestDeleteAndKeyChange(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := scopedCtx(scoped)
		db := openSQLite(t)
		seedUsers(t, db, 3)
		all := loadAll(t, ctx, db)
		mustExec(t, db, "DELETE FROM users WHERE id = ?", 1)
		require.Nil(t, idmap.Cached[User](ctx, db, 1))
		_, err := idmap.Get[User](ctx, db, 1)
		require.ErrorIs(t, err, sql.ErrNoRows)

		mustExec(t, db, "UPDATE users SET id = 20 WHERE id = 2")
		require.Nil(t, idmap.Cached[User](ctx, db, 2), "entry left under the old key")
		_, err = idmap.Get[User](ctx, db, 2)
		require.ErrorIs(t, err, sql.ErrNoRows)
		moved, err := idmap.Get[User](ctx, db, 20)
		require.NoError(t, err)
		require.Equal(t, "user2", moved.Name)
		require.NotNil(t, idmap.Cached[User](ctx, db, 3), "an unrelated key expired")
		runtime.KeepAlive(all) // the shared map holds its objects weakly
	}
}

// Foreign-key actions widen to the child tables; a table with triggers
// widens to the database unless its triggers are declared.
func TestCascadesAndTriggers(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 2)
	mustExec(t, db, "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE CASCADE, title TEXT)")
	mustExec(t, db, "INSERT INTO posts VALUES (1, 1, 'a'), (2, 2, 'b')")
	p, err := idmap.Get[Post](ctx, db, 1)
	require.NoError(t, err)
	_, err = idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	mustExec(t, db, "DELETE FROM users WHERE id = 1")
	require.Nil(t, idmap.Cached[Post](ctx, db, 1), "a cascaded delete left the child cached")
	_, err = idmap.Get[Post](ctx, db, 1)
	require.ErrorIs(t, err, sql.ErrNoRows)
	_ = p

	// A trigger on posts that writes users: any write to posts widens.
	mustExec(t, db, "CREATE TABLE audit (id INTEGER PRIMARY KEY, n INTEGER)")
	mustExec(t, db, "CREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN UPDATE users SET email = 'touched' WHERE id = NEW.user_id; END")
	u2, err := idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	require.NotEqual(t, "touched", u2.Email)
	mustExec(t, db, "UPDATE posts SET title = 'c' WHERE id = 2")
	got, err := idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	require.Equal(t, "touched", got.Email, "a trigger's write was served stale")
}

func TestTriggerWritesDeclared(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, _ := openCounted(t, idmap.TriggerWrites("posts", "users"))
	seedUsers(t, db, 2)
	mustExec(t, db, "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)")
	mustExec(t, db, "CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT)")
	mustExec(t, db, "INSERT INTO posts VALUES (1, 1, 'a')")
	mustExec(t, db, "INSERT INTO tags VALUES ('go', 'Go')")
	mustExec(t, db, "CREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN UPDATE users SET email = 'touched' WHERE id = NEW.user_id; END")
	_, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	tag, err := idmap.Get[Tag](ctx, db, "go")
	require.NoError(t, err)
	mustExec(t, db, "UPDATE posts SET title = 'b' WHERE id = 1")
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "a declared trigger target was not expired")
	require.Same(t, tag, idmap.Cached[Tag](ctx, db, "go"), "an undeclared table was expired")
}

// INSERT … RETURNING through the query path, and prepared statements,
// count as writes.
func TestWritesThroughQueryAndPrepare(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 2)
	_ = loadAll(t, ctx, db)
	rows, err := db.QueryContext(ctx, "UPDATE users SET name = 'ret' WHERE id = 1 RETURNING id, name, email")
	require.NoError(t, err)
	var us []*User
	require.NoError(t, idmap.Bind(rows, &us))
	require.Equal(t, "ret", us[0].Name)
	require.NotNil(t, idmap.Cached[User](ctx, db, 2))

	st, err := db.PrepareContext(ctx, "UPDATE users SET name = ? WHERE id = ?")
	require.NoError(t, err)
	defer st.Close()
	_, err = st.ExecContext(ctx, "prep", 2)
	require.NoError(t, err)
	require.Nil(t, idmap.Cached[User](ctx, db, 2))
	u2, err := idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	require.Equal(t, "prep", u2.Name)
}

// The read-then-invalidate race, made to happen: a query begins, a write to
// its row finishes while its rows are on the way, then Bind stores them.
// The row must not be stored as fresh.
func TestReadThenInvalidateRace(t *testing.T) {
	ctx := context.Background()
	pause := fakedb.NewPause()
	defer pause.Release()
	name := "old"
	fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		switch {
		case q.Kind == fakedb.KindQuery && strings.Contains(q.SQL, "users"):
			return &fakedb.Result{Columns: []string{"id", "name", "email"}, Rows: [][]driver.Value{{int64(1), name, ""}}, BeforeRow: pause.AtRow(1)}, nil
		case q.Kind == fakedb.KindExec:
			name = "new"
			return &fakedb.Result{RowsAffected: 1}, nil
		}
		return nil, nil // the catalogue: no foreign keys, no triggers
	})
	db := sql.OpenDB(idmap.NewConnector(fd.Connector(), idmap.Dialect("sqlite")))
	defer db.Close()
	done := make(chan []*User)
	go func() {
		rows, err := db.QueryContext(ctx, "SELECT id, name, email FROM users WHERE id = 1")
		var us []*User
		if err == nil {
			err = idmap.Bind(rows, &us)
		}
		if err != nil {
			t.Error(err)
		}
		done <- us
	}()
	<-pause.Reached() // the reader's query has begun; its row is not out yet
	res, err := db.ExecContext(ctx, "UPDATE users SET name = 'new' WHERE id = 1")
	require.NoError(t, err)
	_ = res
	pause.Release()
	us := <-done
	require.Equal(t, "old", us[0].Name)
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "a row read before a write finished was stored as fresh")
	got, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "new", got.Name)
}

// A driver that answers a statement with arguments with driver.ErrSkip
// (go-sql-driver/mysql with interpolateParams=false) sees it again through
// Prepare: it is tracked there, once, and only when it succeeds.
func TestErrSkipTrackedOnce(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	fail := true
	var prepared int
	fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		switch {
		case q.Kind == fakedb.KindQuery && strings.Contains(q.SQL, "users"):
			return &fakedb.Result{Columns: []string{"id", "name", "email"}, Rows: [][]driver.Value{{int64(1), "a", ""}, {int64(2), "b", ""}}}, nil
		case q.Kind == fakedb.KindExec && !q.Stmt && len(q.Args) > 0:
			return nil, driver.ErrSkip
		case q.Kind == fakedb.KindExec && q.Stmt:
			prepared++
			if fail {
				return nil, errors.New("constraint violated") // a server error: nothing ran
			}
			return &fakedb.Result{RowsAffected: 1}, nil
		}
		return nil, nil
	})
	db := sql.OpenDB(idmap.NewConnector(fd.Connector(), idmap.Dialect("mysql")))
	defer db.Close()
	_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users")
	_, err := db.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", "x", 1)
	require.Error(t, err)
	require.Equal(t, 1, prepared, "the statement did not come again through Prepare")
	require.NotNil(t, idmap.Cached[User](ctx, db, 1), "a statement that failed expired its key")
	fail = false
	_, err = db.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", "x", 1)
	require.NoError(t, err)
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "the write through Prepare was not tracked")
	require.NotNil(t, idmap.Cached[User](ctx, db, 2), "the write expired more than its key")
}

// Writes through the driver expire what they touch (for now the whole
// database): the map never serves data that this process changed.
func TestWriteExpires(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 2)
	u, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "UPDATE users SET name = ? WHERE id = ?", "changed", 1)
	if idmap.Cached[User](ctx, db, 1) != nil {
		t.Error("Cached served an expired object")
	}
	got, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "changed" {
		t.Errorf("Get after UPDATE: got %q; want changed", got.Name)
	}
	if u.Name != "user1" {
		t.Error("the shared map wrote to an object already handed out")
	}

	// A statement that fails expires nothing.
	v, _ := idmap.Get[User](ctx, db, 2)
	if _, err := db.ExecContext(ctx, "UPDATE nosuchtable SET x = 1"); err == nil {
		t.Fatal("want an error")
	}
	if idmap.Cached[User](ctx, db, 2) != v {
		t.Error("a failed statement expired an entry")
	}
}

// Closing a database expires what the maps hold of it: what happens to it
// while it is closed is not seen.
func TestCloseExpires(t *testing.T) {
	ctx := context.Background()
	dsn := "file:" + t.TempDir() + "/close.db"
	db, err := sql.Open("idmap+sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	seedUsers(t, db, 1)
	u, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	plain, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, plain, "UPDATE users SET name = 'while closed' WHERE id = 1")
	plain.Close()
	db, err = sql.Open("idmap+sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if c := idmap.Cached[User](ctx, db, 1); c != nil {
		t.Fatalf("after Close and reopen, Cached serves %q", c.Name)
	}
	got, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "while closed" {
		t.Errorf("got %q; want the row as it is now", got.Name)
	}
	_ = u
}
