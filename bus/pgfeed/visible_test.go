package pgfeed_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgfeed"
)

// TestFeedDeliversOnlyVisibleCommits: the feed delivers a transaction
// only once new snapshots show it. A commit waiting for a synchronous
// standby (here, one that does not exist) is flushed, so streamed, but
// not yet visible: a query begun then reads the old row. Each message the
// feed delivers is checked, as it is delivered, by a query on another
// connection; before the fix the feed delivered the commit while the
// writer still waited, and that query read the old value.
//
// The test sets synchronous_standby_names server-wide for about a second
// (every commit with synchronous_commit on, or remote_write or
// remote_apply, waits meanwhile) and resets it
// at the end, pass or fail: it needs a superuser, as the test server's
// role is.
func TestFeedDeliversOnlyVisibleCommits(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE counters (id bigint PRIMARY KEY, v bigint NOT NULL)`,
		`INSERT INTO counters VALUES (1, 0)`)
	// Each message on counters is checked as it is delivered, on a pool
	// closed after the feed (cleanups run last first).
	check, err := sql.Open("pgx", e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { check.Close() })
	check.SetMaxOpenConns(1)
	f := e.feed("visible", []string{"counters"})
	var mu sync.Mutex
	var seen []int64 // the value a query read at each delivery
	subscribe(t, f, bus.Handler{
		Message: func(m bus.Message) {
			if !names(m, "counters", 1) {
				return
			}
			var v int64
			if err := check.QueryRow(`SELECT v FROM counters WHERE id = 1`).Scan(&v); err != nil {
				t.Error(err)
			}
			mu.Lock()
			seen = append(seen, v)
			mu.Unlock()
		},
	})

	release := holdCommit(t, e, `UPDATE counters SET v = 1 WHERE id = 1`)
	// Time for the feed to stream the commit: it must not deliver it.
	time.Sleep(time.Second)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the update is delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	for i, v := range seen {
		if v != 1 {
			t.Errorf("delivery %d of the update: a query begun then read v = %d, the value before it: the feed delivered a commit that new snapshots did not show", i+1, v)
		}
	}
}

// TestFeedCheckConnectionLost: the connection that confirms commits, once
// lost, ends the stream with a gap at the next commit (what was held is
// not delivered: the subscriber flushes instead), and the feed streams
// again with a new one.
func TestFeedCheckConnectionLost(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE counters (id bigint PRIMARY KEY, v bigint NOT NULL)`,
		`INSERT INTO counters VALUES (1, 0)`)
	app := unique("check_app")
	f := e.feed("check_lost", []string{"counters"}, pgfeed.ApplicationName(app))
	gaps := make(chan bus.Gap, 16)
	msgs := make(chan bus.Message, 64)
	subscribe(t, f, bus.Handler{
		Message: func(m bus.Message) { msgs <- m },
		Gap:     func(g bus.Gap) { gaps <- g },
	})
	nextGap := func(resumed bool) {
		t.Helper()
		select {
		case g := <-gaps:
			if g.Resumed != resumed {
				t.Fatalf("gap %+v; want Resumed %v", g, resumed)
			}
		case <-time.After(waitFor):
			t.Fatalf("no gap with Resumed %v", resumed)
		}
	}
	delivered := func(v int64) {
		t.Helper()
		e.exec(fmt.Sprintf(`UPDATE counters SET v = %d WHERE id = 1`, v))
		for deadline := time.After(waitFor); ; {
			select {
			case m := <-msgs:
				if names(m, "counters", 1) {
					return
				}
			case <-deadline:
				t.Fatalf("update %d never delivered", v)
			}
		}
	}
	nextGap(true) // the one subscribe waited for
	delivered(1)
	var n int
	if err := e.plain.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend' AND query LIKE '%pg_current_snapshot%'`, app).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the connection that confirms commits: %d, %v", n, err)
	}
	e.exec(`UPDATE counters SET v = 2 WHERE id = 1`)
	nextGap(false)
	nextGap(true)
	delivered(3)
}

// holdCommit runs stmt on a connection of its own, with
// synchronous_commit on, while the server waits for a synchronous standby
// that does not exist: the commit is flushed (so streamed) but waits,
// not yet visible to other sessions. It returns once the commit waits;
// release lets it finish and returns the statement's error. The setting
// is server-wide (every commit with synchronous_commit on, remote_write
// or remote_apply waits meanwhile) and is reset at the end of the test,
// pass or fail; it needs a superuser, as the test server's role is.
func holdCommit(t *testing.T, e *env, stmt string) (release func() error) {
	t.Helper()
	var super bool
	if err := e.plain.QueryRow(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		t.Fatal(err)
	}
	if !super {
		t.Skip("the role of IDMAP_PG_DSN is not a superuser: it cannot set synchronous_standby_names")
	}
	ctx := context.Background()
	writer, err := e.plain.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writer.Close() })
	// Reset before the writer closes (cleanups run last first): its
	// commit may still wait.
	reset := func() {
		e.exec(`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`)
	}
	t.Cleanup(reset)
	e.exec(`ALTER SYSTEM SET synchronous_standby_names = 'idmap_no_such_standby'`, `SELECT pg_reload_conf()`)
	waitUntil(t, "the writer's session reads the new setting", func() bool {
		var s string
		_ = writer.QueryRowContext(ctx, `SHOW synchronous_standby_names`).Scan(&s)
		return s == "idmap_no_such_standby"
	})
	// (The test server runs with synchronous_commit off.)
	if _, err := writer.ExecContext(ctx, `SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := writer.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// The checkpointer applies the setting to commits a little after the
	// reload: until then the update commits without waiting, and is
	// sent again.
	var done chan error
	for attempt := 0; ; attempt++ {
		if attempt == 100 {
			t.Fatal("commits never waited for the standby")
		}
		done = make(chan error, 1)
		go func() {
			_, err := writer.ExecContext(ctx, stmt)
			done <- err
		}()
		waiting := false
		for range 200 {
			var ev sql.NullString
			_ = e.plain.QueryRow(`SELECT wait_event FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&ev)
			if waiting = ev.String == "SyncRep"; waiting {
				break
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				done = nil
			case <-time.After(time.Millisecond):
			}
			if done == nil {
				break
			}
		}
		if waiting {
			break // the commit is flushed (streamed) and waits for the standby
		}
		if done != nil {
			t.Fatal("the update neither returned nor waited for the standby")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() error {
		reset()
		return <-done
	}
}

// TestFeedResumesAfterHeldCommits: a commit that waits for a synchronous
// standby while the feed reconnects. The new slot begins after the
// commit's record, so the commit is never streamed again; the feed must
// not resume (and the database serve again) before the commit is visible.
// PostgreSQL's slot creation waits for every transaction that its first
// snapshot of running transactions lists, and a transaction leaves that
// list when it becomes visible: the feed resumes only then.
func TestFeedResumesAfterHeldCommits(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE counters (id bigint PRIMARY KEY, v bigint NOT NULL)`,
		`INSERT INTO counters VALUES (1, 0)`)
	app := unique("resume_app")
	f := e.feed("resume_held", []string{"counters"}, pgfeed.ApplicationName(app), pgfeed.Backoff(10*time.Millisecond, 50*time.Millisecond))
	gaps := make(chan bus.Gap, 16)
	subscribe(t, f, bus.Handler{Message: func(bus.Message) {}, Gap: func(g bus.Gap) { gaps <- g }})
	<-gaps // the one subscribe waited for
	release := holdCommit(t, e, `UPDATE counters SET v = 1 WHERE id = 1`)
	released := false
	defer func() {
		if !released {
			_ = release()
		}
	}()
	// End the stream: terminate the feed's walsender.
	slot := f.Slot()
	var n int
	if err := e.plain.QueryRow(`SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the feed's walsender: %d, %v", n, err)
	}
	select {
	case g := <-gaps:
		if g.Resumed {
			t.Fatal("the feed resumed at once instead of reporting the gap")
		}
	case <-time.After(waitFor):
		t.Fatal("no gap after the walsender was terminated")
	}
	// The feed reconnects, and its new slot waits for the commit.
	waitUntil(t, "the feed creates its new slot", func() bool {
		var waiting int
		_ = e.plain.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name = $1 AND query LIKE 'CREATE_REPLICATION_SLOT%'`, app).Scan(&waiting)
		return waiting > 0
	})
	// While the commit waits, the feed does not resume.
	select {
	case g := <-gaps:
		t.Fatalf("gap %+v while a commit streamed before the gap is not visible yet", g)
	case <-time.After(time.Second):
	}
	released = true
	if err := release(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case g := <-gaps:
			if g.Resumed {
				return
			}
		case <-time.After(waitFor):
			t.Fatal("the feed never resumed once the commit was visible")
		}
	}
}
