package idmap_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// SPEC's django-idmap table, row "flush(), flush_instance_cache(),
// flush_cached_instance(obj)".
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

// SPEC's django-idmap table, rows "flush(db), multi_db" and "pre_flush /
// post_flush signals with db".
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

// SPEC's django-idmap table, row "automatic flush on request_finished,
// post_migrate": the request end is tested by TestMiddlewareScopePerRequest;
// a schema change through the driver flushes too.
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

// A schema change flushes the table it changed, with reason SchemaChange.
func TestSchemaChangeFlushesTable(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 1)
	mustExec(t, db, `CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT)`)
	mustExec(t, db, `INSERT INTO tags VALUES ('go', 'Go')`)
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	tag, err := idmap.Get[Tag](ctx, db, "go")
	require.NoError(t, err)
	var got []signals.Flush
	defer signals.PostFlush.Connect(func(f signals.Flush) {
		if f.DB == idmap.NameOf(db) {
			got = append(got, f)
		}
	})()
	mustExec(t, db, "ALTER TABLE tags ADD COLUMN extra TEXT")
	require.Equal(t, []signals.Flush{{DB: idmap.NameOf(db), Table: "tags", Reason: signals.SchemaChange}}, got)
	require.Nil(t, idmap.Cached[Tag](ctx, db, "go"))
	require.Same(t, u, idmap.Cached[User](ctx, db, 1), "a schema change to tags flushed users")
	_ = tag
	_ = errors.New
}
