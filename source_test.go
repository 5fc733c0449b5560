package idmap_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// syncSource is a source that is a bus.Syncer: its statement is SELECT 1,
// and it counts the marks and the waits.
type syncSource struct {
	*bus.Loopback
	marks, waits atomic.Int64
	fail         error
}

func (s *syncSource) SyncStatement() (string, []any, func(context.Context) error) {
	s.marks.Add(1)
	return "SELECT 1", nil, func(context.Context) error {
		s.waits.Add(1)
		return s.fail
	}
}

// TestSourceSyncOnUnboundedCommit: a commit whose effects the reader
// cannot bound (here: a table with a trigger) waits for a Syncer source,
// on every commit path; one it understands, or a rollback, does not.
func TestSourceSyncOnUnboundedCommit(t *testing.T) {
	src := &syncSource{Loopback: bus.NewLoopback()}
	db, _ := openCounted(t, idmap.Name("source-sync"), idmap.WithSource(src))
	ctx := context.Background()
	mustExec(t, db, usersDDL)
	mustExec(t, db, `CREATE TABLE audit (id INTEGER PRIMARY KEY, user_id INTEGER)`)
	mustExec(t, db, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`)
	mustExec(t, db, `CREATE TRIGGER users_audit AFTER UPDATE ON users BEGIN INSERT INTO audit (user_id) VALUES (NEW.id); END`)
	mustExec(t, db, `INSERT INTO users (id, name) VALUES (1, 'a')`)
	mustExec(t, db, `INSERT INTO notes VALUES (1, 'n')`)

	check := func(what string, want int64, do func()) {
		t.Helper()
		before := src.waits.Load()
		do()
		if got := src.waits.Load() - before; got != want {
			t.Errorf("%s: %d waits for the source; want %d", what, got, want)
		}
		if src.marks.Load() != src.waits.Load() {
			t.Fatalf("%s: %d marks, %d waits", what, src.marks.Load(), src.waits.Load())
		}
	}
	tx := func(query string, commit bool) func() {
		return func() {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, tx, query)
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	check("transaction with a trigger", 1, tx(`UPDATE users SET name = 'b' WHERE id = 1`, true))
	check("rolled back", 0, tx(`UPDATE users SET name = 'c' WHERE id = 1`, false))
	check("transaction the reader bounds", 0, tx(`UPDATE notes SET body = 'm' WHERE id = 1`, true))
	check("autocommit with a trigger", 1, func() { mustExec(t, db, `UPDATE users SET name = 'd' WHERE id = 1`) })
	check("autocommit the reader bounds", 0, func() { mustExec(t, db, `UPDATE notes SET body = 'o' WHERE id = 1`) })
	check("autocommit through the query path", 1, func() {
		rows, err := db.QueryContext(ctx, `UPDATE users SET name = 'e' WHERE id = 1 RETURNING id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
	})
	check("COMMIT sent as SQL", 1, func() {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mustExec(t, c, `BEGIN`)
		mustExec(t, c, `UPDATE users SET name = 'f' WHERE id = 1`)
		mustExec(t, c, `COMMIT`)
	})
	// The source publishes nothing: WithSource only subscribes.
	if sent := src.Sent(); len(sent) != 0 {
		t.Fatalf("the database published %d messages on its source", len(sent))
	}
}

// TestSourceSyncFailure: a wait that fails is logged, and the data stays
// right.
func TestSourceSyncFailure(t *testing.T) {
	src := &syncSource{Loopback: bus.NewLoopback(), fail: errors.New("feed down")}
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, _ := openCounted(t, idmap.Name("source-sync-fail"), idmap.WithSource(src), idmap.Logger(logger))
	ctx := context.Background()
	mustExec(t, db, usersDDL)
	mustExec(t, db, `CREATE TABLE audit (id INTEGER PRIMARY KEY, user_id INTEGER)`)
	mustExec(t, db, `CREATE TRIGGER users_audit AFTER UPDATE ON users BEGIN INSERT INTO audit (user_id) VALUES (NEW.id); END`)
	mustExec(t, db, `INSERT INTO users (id, name) VALUES (1, 'a')`)
	if _, err := idmap.Get[User](ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `UPDATE users SET name = 'b' WHERE id = 1`)
	if u, err := idmap.Get[User](ctx, db, 1); err != nil || u.Name != "b" {
		t.Fatalf("Get = %+v, %v", u, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "feed down") {
		t.Fatalf("the failed wait was not logged: %q", buf.String())
	}
}

// TestSourceRules: a source follows a bus's rules. Its messages expire
// what they name; while it is cut, nothing is served; a database may have
// a bus and a source, and publishes only on the bus.
func TestSourceRules(t *testing.T) {
	if _, err := idmap.Open("sqlite3", "file:x.db", idmap.WithSource(nil)); err == nil || !strings.HasPrefix(err.Error(), "idmap: WithSource") {
		t.Fatalf("WithSource(nil): %v", err)
	}
	src, b := bus.NewLoopback(), bus.NewLoopback()
	db, _ := openCounted(t, idmap.Name("source-rules"), idmap.WithSource(src), idmap.WithBus(b))
	ctx := context.Background()
	seedUsers(t, db, 3)
	waitFresh := func(id int64) *User {
		t.Helper()
		src.Sync()
		b.Sync()
		u, err := idmap.Get[User](ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		if idmap.Cached[User](ctx, db, id) != u {
			t.Fatalf("user %d is not served from the map", id)
		}
		return u
	}
	waitFresh(1)
	// A message of the source expires the key it names.
	if err := src.Publish(ctx, []bus.Message{{Origin: "feed", Seq: 1, DB: "source-rules", Table: "users", Keys: []any{int64(1)}, Columns: []string{"id"}}}); err != nil {
		t.Fatal(err)
	}
	src.Sync()
	if idmap.Cached[User](ctx, db, 1) != nil {
		t.Fatal("the source's message did not expire the key")
	}
	// Cut: nothing is served until it is restored.
	waitFresh(2)
	src.Cut(errors.New("lost"))
	src.Sync()
	if idmap.Cached[User](ctx, db, 2) != nil {
		t.Fatal("a row is served while the source is cut")
	}
	src.Restore()
	waitFresh(2)
	// Writes are published on the bus, not on the source.
	mustExec(t, db, `UPDATE users SET name = 'z' WHERE id = 3`)
	if len(b.Sent()) == 0 {
		t.Fatal("nothing published on the bus")
	}
	if len(src.Sent()) != 1 { // the test's own message
		t.Fatalf("the database published %d messages on its source", len(src.Sent())-1)
	}
}
