package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// The tests in this file follow the rows of SPEC.md's django-idmap table.

// Row "model opts in": a TableName method, or Model.
type Tag struct {
	Code  string `db:"code,pk"`
	Label string
}

func init() { idmap.Model[Tag](idmap.Table("tags")) }

func TestOptInByTableNameAndModel(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 2)
	mustExec(t, db, `CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT)`)
	mustExec(t, db, `INSERT INTO tags VALUES ('go', 'Go'), ('py', 'Python')`)

	a := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id = 1")
	b := queryUsers(t, ctx, db, "SELECT * FROM users WHERE name = 'user1'")
	if a[0] != b[0] {
		t.Errorf("TableName type: got two objects for one row")
	}

	t1, err := idmap.Get[Tag](ctx, db, "go")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT code, label FROM tags ORDER BY code")
	if err != nil {
		t.Fatal(err)
	}
	var tags []*Tag
	if err := idmap.Bind(rows, &tags); err != nil {
		t.Fatal(err)
	}
	if tags[0] != t1 || t1.Label != "Go" {
		t.Errorf("Model type: got %p %+v; want %p", tags[0], tags[0], t1)
	}
}

// Row "loaded once and shared until the request ends": canonical pointers,
// and a scope per request with Middleware.
func TestMiddlewareScopePerRequest(t *testing.T) {
	db := openSQLite(t)
	seedUsers(t, db, 1)
	var mu sync.Mutex
	var seen []*User
	h := idmap.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := idmap.Get[User](r.Context(), db, 1)
		if err != nil {
			t.Error(err)
			return
		}
		b := queryUsers(t, r.Context(), db, "SELECT id, name, email FROM users")[0]
		if a != b {
			t.Error("two loads in one request gave two objects")
		}
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
	}))
	var ends []signals.Flush
	defer signals.PostFlush.Connect(func(f signals.Flush) {
		if f.Reason == signals.RequestEnd {
			mu.Lock()
			ends = append(ends, f)
			mu.Unlock()
		}
	})()
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("two requests shared an object: %v", seen)
	}
	if len(ends) != 2 || !ends[0].Scoped || ends[0].DB != "" {
		t.Errorf("RequestEnd flushes: got %+v; want 2, scoped, every database", ends)
	}
	if c := idmap.Cached[User](context.Background(), db, 1); c != nil {
		t.Errorf("a request scope wrote to the shared map")
	}
}

// Row "temporary attributes survive a second load".
func TestTemporaryFieldSurvivesReload(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := context.Background()
		if scoped {
			ctx = idmap.NewContext(ctx)
		}
		db := openSQLite(t)
		seedUsers(t, db, 3)
		u := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id = ?", 2)[0]
		u.Visits = 41
		again := queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		if again[1] != u || again[1].Visits != 41 {
			t.Errorf("scoped=%v: got %p visits=%d; want %p visits=41", scoped, again[1], again[1].Visits, u)
		}
		mustExec(t, db, "UPDATE users SET name = 'renamed' WHERE id = 2")
		r := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id = 2")[0]
		if scoped {
			// A refresh in a scope keeps the pointer and the temporary field.
			if r != u || r.Name != "renamed" || r.Visits != 41 {
				t.Errorf("refresh in scope: got %p %+v; want %p renamed, visits 41", r, r, u)
			}
		} else {
			// The shared map never writes to an object handed out: a new
			// object, which keeps the temporary field.
			if r == u || r.Name != "renamed" || r.Visits != 41 || u.Name != "user2" {
				t.Errorf("refresh in shared map: got %p %+v (old %+v); want a new object, renamed, visits 41", r, r, u)
			}
		}
	}
}

// Row "weak references (default) / use_strong_refs".
type Pinned struct {
	ID   int64 `db:"id"`
	Name string
}

func init() { idmap.Model[Pinned](idmap.Table("users"), idmap.StrongRefs()) }

func TestWeakAndStrongRefs(t *testing.T) {
	ctx := context.Background()
	db, count := openCounted(t)
	seedUsers(t, db, 1)

	// Weak: the entry lives while the object is reachable.
	u := queryUsers(t, ctx, db, "SELECT id, name, email FROM users")[0]
	runtime.GC()
	if idmap.Cached[User](ctx, db, 1) != u {
		t.Fatal("weak entry lost while its object is reachable")
	}
	runtime.KeepAlive(u)
	u = nil
	gone := false
	for range 10 {
		runtime.GC()
		if idmap.Cached[User](ctx, db, 1) == nil {
			gone = true
			break
		}
	}
	if !gone {
		t.Error("weak entry outlived its object")
	}

	// Strong: kept until flushed, even with no reference left.
	p, err := idmap.Get[Pinned](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := uintptrOf(p)
	p = nil
	runtime.GC()
	runtime.GC()
	before := count.Queries()
	p2, err := idmap.Get[Pinned](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if uintptrOf(p2) != addr || count.Queries() != before {
		t.Error("strong entry was not kept")
	}
	idmap.FlushType[Pinned](ctx, idmap.NameOf(db))
	if idmap.Cached[Pinned](ctx, db, 1) != nil {
		t.Error("strong entry survived FlushType")
	}
}

func uintptrOf[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }

// Row "Model.objects.get(pk=1) served from the cache, no query": with a
// *sql.DB, a *sql.Tx and a *sql.Conn.
func TestGetHitNoRoundTrip(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, count := openCounted(t)
	seedUsers(t, db, 2)

	u, err := idmap.Get[User](ctx, db, 1) // miss: one query
	if err != nil {
		t.Fatal(err)
	}
	before := count.Queries()
	for _, key := range []any{1, int32(1), int64(1), "1", uint8(1)} {
		got, err := idmap.Get[User](ctx, db, key)
		if err != nil || got != u {
			t.Errorf("Get(%T %v): got %p, %v; want %p", key, key, got, err, u)
		}
	}
	if n := count.Queries() - before; n != 0 {
		t.Errorf("Get hits on *sql.DB sent %d queries; want 0", n)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before = count.Queries()
	if got, err := idmap.Get[User](ctx, conn, 1); err != nil || got != u {
		t.Errorf("Get on *sql.Conn: got %p, %v; want %p", got, err, u)
	}
	if n := count.Queries() - before; n != 0 {
		t.Errorf("Get hit on *sql.Conn sent %d queries; want 0", n)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	first, err := idmap.Get[User](ctx, tx, 2)
	if err != nil {
		t.Fatal(err)
	}
	before = count.Queries()
	if got, err := idmap.Get[User](ctx, tx, 2); err != nil || got != first {
		t.Errorf("Get on *sql.Tx: got %p, %v; want %p", got, err, first)
	}
	if n := count.Queries() - before; n != 0 {
		t.Errorf("Get hit on *sql.Tx sent %d queries; want 0", n)
	}

	// A miss is exactly one query.
	before = count.Queries()
	if _, err := idmap.Get[User](context.Background(), db, 2); err != nil {
		t.Fatal(err)
	}
	if n := count.Queries() - before; n != 1 {
		t.Errorf("Get miss sent %d queries; want 1", n)
	}
	if _, err := idmap.Get[User](ctx, db, 99); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("Get of an absent row: got %v; want sql.ErrNoRows", err)
	}
}

// Row "flush(), flush_instance_cache(), flush_cached_instance(obj)".
func TestFlushFlushTypeFlushInstance(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 2)
	mustExec(t, db, `CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT)`)
	mustExec(t, db, `INSERT INTO tags VALUES ('go', 'Go')`)
	load := func() (*User, *User, *Tag) {
		us := queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		tg, err := idmap.Get[Tag](ctx, db, "go")
		if err != nil {
			t.Fatal(err)
		}
		return us[0], us[1], tg
	}
	u1, u2, tg := load()

	idmap.FlushInstance(ctx, u1)
	if idmap.Cached[User](ctx, db, 1) != nil || idmap.Cached[User](ctx, db, 2) != u2 || idmap.Cached[Tag](ctx, db, "go") != tg {
		t.Error("FlushInstance forgot more or less than its object")
	}
	idmap.FlushInstance(ctx, &User{ID: 2}) // not the canonical object: ignored
	if idmap.Cached[User](ctx, db, 2) != u2 {
		t.Error("FlushInstance of a copy forgot the canonical object")
	}

	idmap.FlushType[User](ctx)
	if idmap.Cached[User](ctx, db, 2) != nil || idmap.Cached[Tag](ctx, db, "go") != tg {
		t.Error("FlushType[User] forgot more or less than users")
	}

	u1, _, _ = load()
	idmap.Flush(ctx)
	if idmap.Cached[User](ctx, db, 1) != nil || idmap.Cached[Tag](ctx, db, "go") != nil {
		t.Error("Flush left objects behind")
	}
	if n, _, _ := load(); n == u1 {
		t.Error("after Flush, a load returned the old object")
	}
}

// Rows "flush(db), multi_db" and "pre_flush / post_flush signals with db".
func TestMapsPerDatabaseAndSignals(t *testing.T) {
	ctx := context.Background()
	db1, db2 := openSQLite(t), openSQLite(t)
	seedUsers(t, db1, 1)
	seedUsers(t, db2, 1)
	a, err := idmap.Get[User](ctx, db1, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := idmap.Get[User](ctx, db2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two databases share one object")
	}
	var got []string
	var mu sync.Mutex
	d1 := signals.PreFlush.Connect(func(f signals.Flush) {
		if f.DB == idmap.NameOf(db1) {
			mu.Lock()
			got = append(got, "pre "+f.Reason.String())
			mu.Unlock()
		}
	})
	d2 := signals.PostFlush.Connect(func(f signals.Flush) {
		if f.DB == idmap.NameOf(db1) {
			mu.Lock()
			got = append(got, "post "+f.Reason.String())
			mu.Unlock()
		}
	})
	idmap.Flush(ctx, idmap.NameOf(db1))
	d1()
	d2()
	d1() // disconnecting twice is harmless
	if idmap.Cached[User](ctx, db1, 1) != nil {
		t.Error("Flush(db1) left db1's object")
	}
	if idmap.Cached[User](ctx, db2, 1) != b {
		t.Error("Flush(db1) flushed db2")
	}
	if len(got) != 2 || got[0] != "pre manual" || got[1] != "post manual" {
		t.Errorf("signals: got %v; want [pre manual post manual]", got)
	}
	idmap.Flush(ctx, idmap.NameOf(db1))
	if len(got) != 2 {
		t.Errorf("a disconnected receiver was called: %v", got)
	}

	// Databases that share a name share maps (primary + replica).
	replica, err := idmap.Open("sqlite3", "file:"+t.TempDir()+"/replica.db", idmap.Name(idmap.NameOf(db2)))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if idmap.Cached[User](ctx, replica, 1) != b {
		t.Error("databases with one name do not share their map")
	}
}

// Row "automatic flush on request_finished, post_migrate": the request end
// is tested above; a schema change through the driver flushes too.
func TestSchemaChangeFlushes(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 1)
	u, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []signals.Reason
	defer signals.PostFlush.Connect(func(f signals.Flush) {
		if f.DB == idmap.NameOf(db) {
			reasons = append(reasons, f.Reason)
		}
	})()
	mustExec(t, db, "ALTER TABLE users ADD COLUMN age INTEGER")
	if idmap.Cached[User](ctx, db, 1) != nil {
		t.Error("schema change left the object in the shared map")
	}
	if len(reasons) != 1 || reasons[0] != signals.SchemaChange {
		t.Errorf("got flush reasons %v; want [schema change]", reasons)
	}
	_ = u
}

// Row "deserialized objects bypass the map": Intern.
func TestIntern(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := context.Background()
		if scoped {
			ctx = idmap.NewContext(ctx)
		}
		db := openSQLite(t)
		seedUsers(t, db, 2)
		u1, err := idmap.Get[User](ctx, db, 1)
		if err != nil {
			t.Fatal(err)
		}
		decoded := []*User{{ID: 1, Name: "from json"}, {ID: 3, Name: "new"}}
		fresh := decoded[1]
		if err := idmap.Intern(ctx, db, decoded); err != nil {
			t.Fatal(err)
		}
		if decoded[0] != u1 || u1.Name != "user1" {
			t.Errorf("scoped=%v: Intern of a loaded key: got %p %q; want the canonical %p, unchanged", scoped, decoded[0], decoded[0].Name, u1)
		}
		if decoded[1] != fresh || idmap.Cached[User](ctx, db, 3) != fresh {
			t.Errorf("scoped=%v: Intern did not make a new object canonical", scoped)
		}
		if err := idmap.Intern(ctx, db, []*User{{ID: 4}, nil}); err == nil {
			t.Error("Intern with a nil element: no error")
		}
		if idmap.Cached[User](ctx, db, 4) != nil {
			t.Error("a failed Intern changed the map")
		}
	}
}

// A transaction with no scope is its own scope: the shared map never sees
// what it loads, and it is flushed when it ends.
func TestTransactionIsItsOwnScope(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 1)
	shared, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ends []signals.Flush
	defer signals.PostFlush.Connect(func(f signals.Flush) {
		if f.Reason == signals.TxEnd && f.DB == idmap.NameOf(db) {
			ends = append(ends, f)
		}
	})()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "UPDATE users SET name = 'uncommitted' WHERE id = 1")
	in, err := idmap.Get[User](ctx, tx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if in == shared || in.Name != "uncommitted" {
		t.Errorf("in tx: got %p %q; want a new object with the uncommitted name", in, in.Name)
	}
	if c := idmap.Cached[User](ctx, db, 1); c != nil && c.Name == "uncommitted" {
		t.Error("the shared map holds uncommitted data")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if len(ends) != 1 || !ends[0].Scoped {
		t.Errorf("TxEnd flushes: got %+v; want one, scoped", ends)
	}
	after, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if after.Name != "user1" {
		t.Errorf("after rollback: got %q; want user1", after.Name)
	}
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

func TestWithRefreshAndLockingRead(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 1)
	u, _ := idmap.Get[User](ctx, db, 1)
	// Change the row behind idmap's back (a raw connection).
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		bc := dc.(interface{ Unwrap() driver.Conn }).Unwrap()
		ex := bc.(driver.ExecerContext)
		_, err := ex.ExecContext(ctx, "UPDATE users SET name = 'behind' WHERE id = 1", nil)
		return err
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := idmap.Get[User](ctx, db, 1); got.Name != "user1" {
		t.Fatalf("a write behind idmap's back was seen: %q", got.Name)
	}
	got, err := idmap.Get[User](idmap.WithRefresh(ctx), db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got != u || u.Name != "behind" {
		t.Errorf("WithRefresh: got %p %q; want %p refreshed to behind", got, got.Name, u)
	}
}

// Each automatic flush can be turned off per database.
func TestNoAutoFlush(t *testing.T) {
	ctx := context.Background()
	db, _ := openCounted(t, idmap.NoAutoFlush(signals.SchemaChange, signals.TxEnd))
	seedUsers(t, db, 2)
	var flushes int
	defer signals.PreFlush.Connect(func(f signals.Flush) {
		if f.DB == idmap.NameOf(db) {
			flushes++
		}
	})()
	u, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "CREATE INDEX users_name ON users (name)")
	if flushes != 0 {
		t.Errorf("DDL flushed with SchemaChange turned off")
	}
	if idmap.Cached[User](ctx, db, 1) != nil {
		t.Error("DDL did not even expire (the data could be stale)")
	}
	again, _ := idmap.Get[User](ctx, db, 1)
	_ = again
	_ = u

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := idmap.Get[User](ctx, tx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if flushes != 0 {
		t.Errorf("a transaction's end flushed with TxEnd turned off")
	}
	if got := idmap.Cached[User](ctx, db, 2); got != in {
		t.Errorf("after a read-only transaction: got %p; want its object %p, moved to the shared map", got, in)
	}

	if _, err := idmap.Open("sqlite3", ":memory:", idmap.NoAutoFlush(signals.Manual)); err == nil {
		t.Error("NoAutoFlush(Manual): no error")
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
