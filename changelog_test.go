package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-sql-driver/mysql"
)

type clItem struct {
	ID int64 `db:"id,pk"`
	V  int64 `db:"v"`
}

func (clItem) TableName() string { return "cl_items" }

// clEnv is one database reached two ways: plain, the base driver (another
// program), and open, through idmap.
type clEnv struct {
	name    string
	dialect string
	plain   *sql.DB
	idName  string
	open    func(t testing.TB, opts ...idmap.Option) *sql.DB
	// second returns another plain pool on the same data (another
	// process's).
	second func(t testing.TB) *sql.DB
}

var clSeq atomic.Int64

func clEnvs(t testing.TB) []*clEnv {
	envs := []*clEnv{clSQLite(t)}
	if dsn := os.Getenv("IDMAP_MYSQL_DSN"); dsn != "" {
		for _, interp := range []bool{false, true} {
			envs = append(envs, clMySQL(t, dsn, interp))
		}
	} else {
		t.Log("MySQL skipped: IDMAP_MYSQL_DSN is not set")
	}
	return envs
}

func clSQLite(t testing.TB) *clEnv {
	dsn := sqliteDSN(t, "cl.db")
	plain, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	e := &clEnv{name: "SQLite", dialect: "sqlite", plain: plain, idName: fmt.Sprintf("cl/sqlite/%d", clSeq.Add(1))}
	e.open = func(t testing.TB, opts ...idmap.Option) *sql.DB {
		db, err := idmap.Open("sqlite3", dsn, append([]idmap.Option{idmap.Name(e.idName)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	e.second = func(t testing.TB) *sql.DB {
		db, err := sql.Open("sqlite3", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return e
}

func clMySQL(t testing.TB, dsn string, interp bool) *clEnv {
	dbName := fmt.Sprintf("idmap_cl%s_%d", idmap.RunID, clSeq.Add(1))
	cfg := idmap.MySQLTestDatabase(t, dsn, dbName)
	cfg.InterpolateParams = interp
	name := "MySQL"
	if interp {
		name = "MySQLInterpolate"
	}
	pool := func(t testing.TB) *sql.DB {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	e := &clEnv{name: name, dialect: "mysql", plain: pool(t), idName: "cl/mysql/" + dbName, second: pool}
	e.open = func(t testing.TB, opts ...idmap.Option) *sql.DB {
		mc, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(idmap.NewConnector(mc, append([]idmap.Option{idmap.Name(e.idName), idmap.Dialect("mysql")}, opts...)...))
		t.Cleanup(func() { db.Close() })
		return db
	}
	return e
}

// setup creates cl_items with n rows (v = 0) and installs the change log
// on it (twice: it is idempotent).
func (e *clEnv) setup(t testing.TB, n int) {
	t.Helper()
	ctx := context.Background()
	typ := "INTEGER"
	if e.dialect == "mysql" {
		typ = "BIGINT"
	}
	mustExec(t, e.plain, `CREATE TABLE cl_items (id `+typ+` PRIMARY KEY, v BIGINT NOT NULL)`)
	for i := 1; i <= n; i++ {
		mustExec(t, e.plain, `INSERT INTO cl_items (id, v) VALUES (?, 0)`, i)
	}
	for range 2 {
		if err := idmap.InstallChangeLog(ctx, e.plain, "cl_items"); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *clEnv) changeLog(t testing.TB, opts ...idmap.ChangeLogOption) *idmap.ChangeLog {
	cl, err := idmap.NewChangeLog(e.plain, e.idName, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func clListening(db *sql.DB) bool {
	s, _ := idmap.StatsOf(db)
	return s.Bus.Listening
}

func clGet(t testing.TB, db *sql.DB, id int64) int64 {
	t.Helper()
	p, err := idmap.Get[clItem](context.Background(), db, id)
	if errors.Is(err, sql.ErrNoRows) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return p.V
}

// clGetObj is clGet that returns the object: a caller that keeps it keeps
// its entry in the shared map (weak by default: an entry nobody holds may
// be gone after a GC, and its next Get reads the row again).
func clGetObj(t testing.TB, db *sql.DB, id int64) *clItem {
	t.Helper()
	p, err := idmap.Get[clItem](context.Background(), db, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sync waits until cl has read its log up to the end (as a commit through
// idmap would).
func clSync(t testing.TB, cl *idmap.ChangeLog, db *sql.DB) {
	t.Helper()
	q, args, wait := cl.SyncStatement()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
	if err := wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestChangeLogOutsideWriter: writes by a plain pool (another program) are
// expired through the change log: an update, a key change, a delete, an
// insert. Without the change log the same reads stay stale.
func TestChangeLogOutsideWriter(t *testing.T) {
	for _, e := range clEnvs(t) {
		t.Run(e.name, func(t *testing.T) {
			e.setup(t, 3)
			t.Run("without", func(t *testing.T) {
				db := e.open(t)
				// Held, so that a GC does not release its entry (the
				// next Get would read the row again and see the write).
				p := clGetObj(t, db, 1)
				if p.V != 0 {
					t.Fatalf("v = %d", p.V)
				}
				mustExec(t, e.plain, `UPDATE cl_items SET v = 100 WHERE id = 1`)
				time.Sleep(100 * time.Millisecond)
				if v := clGet(t, db, 1); v != 0 {
					t.Fatalf("without the change log the outside write is seen (v = %d): the test proves nothing", v)
				}
				runtime.KeepAlive(p)
				mustExec(t, e.plain, `UPDATE cl_items SET v = 0 WHERE id = 1`)
			})
			cl := e.changeLog(t, idmap.PollInterval(20*time.Millisecond))
			db := e.open(t, idmap.WithSource(cl))
			waitFor(t, "the change log listens", func() bool { return clListening(db) })
			for _, id := range []int64{1, 2, 3, 4} {
				clGet(t, db, id)
			}
			start := time.Now()
			mustExec(t, e.plain, `UPDATE cl_items SET v = 1 WHERE id = 1`)
			waitFor(t, "the update expires", func() bool { return clGet(t, db, 1) == 1 })
			t.Logf("update seen after %v", time.Since(start))
			mustExec(t, e.plain, `UPDATE cl_items SET id = 5 WHERE id = 2`)
			waitFor(t, "the key change expires the old key", func() bool { return clGet(t, db, 2) == -1 })
			mustExec(t, e.plain, `DELETE FROM cl_items WHERE id = 3`)
			waitFor(t, "the delete expires", func() bool { return clGet(t, db, 3) == -1 })
			mustExec(t, e.plain, `INSERT INTO cl_items (id, v) VALUES (4, 44)`)
			waitFor(t, "the insert expires a missing row", func() bool { return clGet(t, db, 4) == 44 })
			// Read-your-writes of another writer: after the sync, the
			// write is seen at once.
			mustExec(t, e.plain, `UPDATE cl_items SET v = 7 WHERE id = 1`)
			clSync(t, cl, e.plain)
			if v := clGet(t, db, 1); v != 7 {
				t.Fatalf("after the sync v = %d, want 7", v)
			}
		})
	}
}

// TestChangeLogOwnTriggersBounded: idmap's own triggers do not count as
// effects the statement reader cannot bound: a write through idmap to a
// table with the change log expires its row, not the whole database.
func TestChangeLogOwnTriggersBounded(t *testing.T) {
	for _, e := range clEnvs(t) {
		t.Run(e.name, func(t *testing.T) {
			e.setup(t, 2)
			db := e.open(t)
			clGet(t, db, 1)
			// Row 2's object is held: a weak entry that nobody holds may
			// go at any GC, and its next Get would read v = 9 without
			// any expiry.
			p2 := clGetObj(t, db, 2)
			defer runtime.KeepAlive(p2)
			mustExec(t, e.plain, `UPDATE cl_items SET v = 9 WHERE id = 2`) // not seen: no change log attached
			mustExec(t, db, `UPDATE cl_items SET v = 1 WHERE id = 1`)
			if v := clGet(t, db, 1); v != 1 {
				t.Fatalf("own write: v = %d", v)
			}
			if v := clGet(t, db, 2); v != 0 {
				t.Fatalf("a write through idmap to a table with the change log's triggers expired another row (v = %d): it was widened", v)
			}
		})
	}
}

type clChild struct {
	ID  int64 `db:"id,pk"`
	PID int64 `db:"pid"`
}

func (clChild) TableName() string { return "cl_child" }

// TestChangeLogCascade: rows that a foreign key's action deletes are
// expired: on MySQL, where such rows run no trigger, the parent's DELETE
// logs the child table whole; on SQLite the child's own triggers run.
func TestChangeLogCascade(t *testing.T) {
	for _, e := range clEnvs(t) {
		t.Run(e.name, func(t *testing.T) {
			e.setup(t, 2)
			mustExec(t, e.plain, `CREATE TABLE cl_child (id BIGINT PRIMARY KEY, pid BIGINT NOT NULL, FOREIGN KEY (pid) REFERENCES cl_items (id) ON DELETE CASCADE)`)
			mustExec(t, e.plain, `INSERT INTO cl_child (id, pid) VALUES (1, 1), (2, 2)`)
			if err := idmap.InstallChangeLog(context.Background(), e.plain, "cl_items", "cl_child"); err != nil {
				t.Fatal(err)
			}
			cl := e.changeLog(t)
			db := e.open(t, idmap.WithSource(cl))
			waitFor(t, "the change log listens", func() bool { return clListening(db) })
			if _, err := idmap.Get[clChild](context.Background(), db, int64(1)); err != nil {
				t.Fatal(err)
			}
			mustExec(t, e.plain, `DELETE FROM cl_items WHERE id = 1`)
			clSync(t, cl, e.plain)
			if _, err := idmap.Get[clChild](context.Background(), db, int64(1)); !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("the child row deleted by the cascade is still served (err %v)", err)
			}
		})
	}
}

// TestChangeLogProbe: a probe comes back after the next complete read.
func TestChangeLogProbe(t *testing.T) {
	e := clSQLite(t)
	e.setup(t, 1)
	cl := e.changeLog(t, idmap.PollInterval(time.Hour))
	got := make(chan uint64, 4)
	listening := make(chan struct{}, 1)
	if err := cl.Subscribe(bus.Handler{Message: func(bus.Message) {}, Gap: func(g bus.Gap) {
		if g.Resumed {
			listening <- struct{}{}
		}
	}, Probe: func(tok uint64) { got <- tok }}); err != nil {
		t.Fatal(err)
	}
	<-listening
	if err := cl.Probe(context.Background(), 42); err != nil {
		t.Fatal(err)
	}
	if tok := <-got; tok != 42 {
		t.Fatalf("token %d", tok)
	}
	cl.Close()
	if err := cl.Probe(context.Background(), 1); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Probe after Close: %v", err)
	}
}

// TestChangeLogInstallErrors: bad names are refused with idmap errors.
func TestChangeLogInstallErrors(t *testing.T) {
	e := clSQLite(t)
	e.setup(t, 1)
	ctx := context.Background()
	for _, name := range []string{"", "cl_items; DROP TABLE x", `"a'b"`, "nosuch", "a.b.c.d"} {
		err := idmap.InstallChangeLog(ctx, e.plain, name)
		if err == nil {
			t.Errorf("%q: no error", name)
			continue
		}
		if s := err.Error(); len(s) < 6 || s[:6] != "idmap:" {
			t.Errorf("%q: error %q", name, s)
		}
	}
	var n int
	if err := e.plain.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d triggers (%v), want 3", n, err)
	}
	if _, err := idmap.NewChangeLog(nil, "x"); err == nil {
		t.Error("NewChangeLog(nil): no error")
	}
}

// TestChangeLogOutOfOrder: two transactions hold sequence numbers, the
// smaller commits last, after the larger was read: it is not skipped.
// (MySQL; on SQLite writers are serialised, so numbers commit in order:
// the second writer waits for the first.)
func TestChangeLogOutOfOrder(t *testing.T) {
	for _, e := range clEnvs(t) {
		if e.dialect != "mysql" {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			e.setup(t, 3)
			ctx := context.Background()
			cl := e.changeLog(t, idmap.PollInterval(10*time.Millisecond), idmap.ChangeLogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			db := e.open(t, idmap.WithSource(cl))
			waitFor(t, "the change log listens", func() bool { return clListening(db) })
			clGet(t, db, 1)
			clGet(t, db, 2)
			tx1, err := e.plain.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx1.Rollback()
			if _, err := tx1.Exec(`UPDATE cl_items SET v = 1 WHERE id = 1`); err != nil { // the smaller number
				t.Fatal(err)
			}
			// A rolled-back transaction leaves a number that never fills.
			tx3, err := e.plain.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx3.Exec(`UPDATE cl_items SET v = 3 WHERE id = 3`); err != nil {
				t.Fatal(err)
			}
			tx3.Rollback()
			tx2, err := e.plain.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx2.Exec(`UPDATE cl_items SET v = 2 WHERE id = 2`); err != nil {
				t.Fatal(err)
			}
			if err := tx2.Commit(); err != nil {
				t.Fatal(err)
			}
			clSync(t, cl, e.plain)
			if v := clGet(t, db, 2); v != 2 {
				t.Fatalf("row 2: v = %d", v)
			}
			if v := clGet(t, db, 1); v != 0 { // loaded again, still 0: tx1 is open
				t.Fatalf("row 1: v = %d", v)
			}
			// Hold tx1 open past the reader's margin (250ms), so that it
			// tries to retire tx1's number (and tx3's) while tx1 holds it.
			time.Sleep(600 * time.Millisecond)
			clSync(t, cl, e.plain) // the reader reads past row 2 again
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
			clSync(t, cl, e.plain)
			if v := clGet(t, db, 1); v != 1 {
				t.Fatalf("the smaller sequence number committed last was skipped: v = %d", v)
			}
			s, _ := idmap.StatsOf(db)
			if s.Bus.Gaps != 0 {
				t.Fatalf("%d gaps: the rolled-back number was not retired", s.Bus.Gaps)
			}
		})
	}
}

// TestChangeLogConcurrentWriters: many writers whose commits interleave
// in every order; after they end and one sync, no row is stale.
func TestChangeLogConcurrentWriters(t *testing.T) {
	for _, e := range clEnvs(t) {
		t.Run(e.name, func(t *testing.T) {
			const rows = 20
			e.setup(t, rows)
			cl := e.changeLog(t, idmap.PollInterval(5*time.Millisecond))
			db := e.open(t, idmap.WithSource(cl))
			waitFor(t, "the change log listens", func() bool { return clListening(db) })
			var final [rows + 1]atomic.Int64
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 3))
					for i := range 40 {
						tx, err := e.plain.Begin()
						if err != nil {
							t.Error(err)
							return
						}
						id := int64(w*5 + rng.IntN(5) + 1) // each writer its own rows
						v := int64(i + 1)
						if _, err := tx.Exec(`UPDATE cl_items SET v = ? WHERE id = ?`, v, id); err != nil {
							tx.Rollback()
							t.Error(err)
							return
						}
						time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
						if rng.IntN(5) == 0 {
							tx.Rollback()
							continue
						}
						if err := tx.Commit(); err != nil {
							t.Error(err)
							return
						}
						final[id].Store(v)
					}
				}()
			}
			// Readers keep loading while the writers run.
			stop := make(chan struct{})
			var rwg sync.WaitGroup
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					clGet(t, db, int64(i%rows+1))
				}
			}()
			wg.Wait()
			close(stop)
			rwg.Wait()
			clSync(t, cl, e.plain)
			for id := 1; id <= rows; id++ {
				if v := clGet(t, db, int64(id)); v != final[id].Load() {
					t.Errorf("row %d: v = %d, want %d", id, v, final[id].Load())
				}
			}
		})
	}
}

// TestChangeLogPruned: a log pruned past the reader's cursor is a gap: the
// subscriber is told, the database flushed, and reading resumes.
func TestChangeLogPruned(t *testing.T) {
	for _, e := range clEnvs(t) {
		t.Run(e.name, func(t *testing.T) {
			e.setup(t, 2)
			cl := e.changeLog(t, idmap.PollInterval(time.Hour))
			var mu sync.Mutex
			var gaps []bus.Gap
			if err := cl.Subscribe(bus.Handler{Message: func(bus.Message) {}, Gap: func(g bus.Gap) {
				mu.Lock()
				gaps = append(gaps, g)
				mu.Unlock()
			}}); err != nil {
				t.Fatal(err)
			}
			nGaps := func() int { mu.Lock(); defer mu.Unlock(); return len(gaps) }
			waitFor(t, "the change log listens", func() bool { return nGaps() == 1 })
			// Its start may read once more (Subscribe's call and the first
			// timer); once a sync has come back it reads only when asked
			// (the poll interval is an hour), so that it cannot read the
			// rows below between the writes and the pruning.
			_, _, wait := cl.SyncStatement()
			if err := wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				mustExec(t, e.plain, `UPDATE cl_items SET v = ? WHERE id = 1`, i+1)
			}
			other := e.changeLog(t)
			time.Sleep(20 * time.Millisecond) // past the resolution of the log's clock
			n, err := other.Prune(context.Background(), 0)
			if err != nil || n != 4 {
				t.Fatalf("pruned %d rows (%v), want 4 (all but the newest)", n, err)
			}
			q, _, wait := cl.SyncStatement()
			_ = q
			if err := wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the gap and the resumption", func() bool { return nGaps() >= 3 })
			mu.Lock()
			defer mu.Unlock()
			if gaps[0].Resumed != true || gaps[1].Resumed || !errors.Is(gaps[1].Err, idmap.ErrChangeLogPruned) || !gaps[2].Resumed {
				t.Fatalf("gaps %+v", gaps)
			}
		})
	}
}

// TestChangeLogSyncWhileLost: a commit's wait (SyncStatement) returns at
// once while the reader does not listen only once its subscribers have
// been told (a database is then paused and flushed); while a subscriber is
// still being told of a loss, it waits like any other. It returned nil at
// once before: a commit could return while its database still served
// what the commit changed.
func TestChangeLogSyncWhileLost(t *testing.T) {
	e := clSQLite(t)
	e.setup(t, 1)
	ctx := context.Background()
	cl := e.changeLog(t, idmap.PollInterval(time.Hour))
	var resumed atomic.Int32
	telling, release := make(chan struct{}), make(chan struct{})
	if err := cl.Subscribe(bus.Handler{Message: func(bus.Message) {}, Gap: func(g bus.Gap) {
		switch {
		case g.Resumed:
			resumed.Add(1)
		case errors.Is(g.Err, idmap.ErrChangeLogPruned):
			close(telling) // the subscriber is being told: it holds the reader here
			<-release
		}
	}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change log listens", func() bool { return resumed.Load() == 1 })
	if _, _, wait := cl.SyncStatement(); wait(ctx) != nil { // the start's extra read is over
		t.Fatal("sync failed")
	}
	mustExec(t, e.plain, `UPDATE cl_items SET v = 1 WHERE id = 1`)
	mustExec(t, e.plain, `UPDATE cl_items SET v = 2 WHERE id = 1`)
	time.Sleep(20 * time.Millisecond) // past the resolution of the log's clock
	if _, err := e.changeLog(t).Prune(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := cl.Probe(ctx, 1); err != nil { // a read, which finds the log pruned past its cursor
		t.Fatal(err)
	}
	<-telling
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, wait := cl.SyncStatement()
	if err := wait(cancelled); err == nil {
		t.Error("a commit's wait confirmed while the subscriber was still being told of the loss")
	}
	close(release)
	_, _, wait = cl.SyncStatement()
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestChangeLogPrunedFlushes: through idmap, the pruned gap flushes the
// database (a row changed by another program is read again).
func TestChangeLogPrunedFlushes(t *testing.T) {
	e := clSQLite(t)
	e.setup(t, 2)
	cl := e.changeLog(t, idmap.PollInterval(time.Hour))
	db := e.open(t, idmap.WithSource(cl), idmap.Lease(time.Hour))
	waitFor(t, "the change log listens", func() bool { return clListening(db) })
	p := clGetObj(t, db, 2)
	// A write the log loses: its row is logged and pruned in the same
	// transaction as the write (the mark first, then the rows, as Prune
	// does; the newest row, another key's write, is kept), so that the
	// reader cannot read it before it is gone, whenever it reads (the
	// prober's probes make it read at moments the test does not choose:
	// a read between the writes and a separate Prune made the test wait
	// for a gap that never came).
	tx, err := e.plain.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE cl_items SET v = 5 WHERE id = 2`,
		`UPDATE cl_items SET v = 1 WHERE id = 1`,
		`UPDATE idmap_changelog_meta SET pruned = (SELECT MAX(seq) - 1 FROM idmap_changelog) WHERE id = 1`,
		`DELETE FROM idmap_changelog WHERE seq < (SELECT MAX(seq) FROM idmap_changelog)`,
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	clSync(t, cl, e.plain)
	waitFor(t, "the gap", func() bool { s, _ := idmap.StatsOf(db); return s.Bus.Gaps >= 1 })
	waitFor(t, "the change log listens again", func() bool { return clListening(db) })
	if v := clGet(t, db, 2); v != 5 {
		t.Fatalf("after the pruned gap v = %d, want 5", v)
	}
	runtime.KeepAlive(p)
}

// runCLModel runs readers through idmap against a writer through idmap
// and one outside it (a plain pool, on SQLite a second handle: another
// process). A version is delivered when its writer returned (idmap) or,
// for the outside writer, once the change log was read past its commit
// (a sync after it); without the change log, once it committed. A read
// older than what was delivered before it began is a violation.
func runCLModel(t *testing.T, e *clEnv, withLog bool, d time.Duration) (reads, violations int64) {
	const rows = 6
	e.setup(t, rows)
	var opts []idmap.Option
	var cl *idmap.ChangeLog
	if withLog {
		cl = e.changeLog(t, idmap.PollInterval(20*time.Millisecond))
		opts = append(opts, idmap.WithSource(cl))
	}
	db := e.open(t, opts...)
	if withLog {
		waitFor(t, "the change log listens", func() bool { return clListening(db) })
	}
	outside := e.second(t)
	ctx := context.Background()
	var locks [rows + 1]sync.Mutex
	var versions [rows + 1]int64
	var bound [rows + 1]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(rows) + 1
				locks[i].Lock()
				v := versions[i] + 1
				var err error
				if w == 0 {
					_, err = db.ExecContext(ctx, `UPDATE cl_items SET v = ? WHERE id = ?`, v, i)
				} else {
					_, err = outside.ExecContext(ctx, `UPDATE cl_items SET v = ? WHERE id = ?`, v, i)
					if err == nil && cl != nil {
						q, args, wait := cl.SyncStatement()
						if _, err = outside.ExecContext(ctx, q, args...); err == nil {
							err = wait(ctx)
						}
					}
				}
				if err != nil {
					locks[i].Unlock()
					t.Error(err)
					return
				}
				versions[i] = v
				bound[i].Store(v)
				locks[i].Unlock()
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
			}
		}()
	}
	var nReads, nViolations atomic.Int64
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 11))
			var held [rows + 1]*clItem
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int64(rng.IntN(rows) + 1)
				b := bound[i].Load()
				p, err := idmap.Get[clItem](ctx, db, i)
				if err != nil {
					t.Error(err)
					return
				}
				held[i] = p
				nReads.Add(1)
				if p.V < b {
					nViolations.Add(1)
				}
			}
		}()
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	return nReads.Load(), nViolations.Load()
}

// TestChangeLogModel: with the change log, no read is older than what the
// log delivered before it began; without it, the same run finds stale
// reads (the test can fail).
func TestChangeLogModel(t *testing.T) {
	for _, e := range clEnvs(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Run("with", func(t *testing.T) {
				e := e
				if e.dialect == "sqlite" {
					e = clSQLite(t)
				} else {
					e = clMySQL(t, os.Getenv("IDMAP_MYSQL_DSN"), e.name == "MySQLInterpolate")
				}
				reads, v := runCLModel(t, e, true, 1500*time.Millisecond)
				t.Logf("with the change log: %d reads, %d stale", reads, v)
				if v != 0 {
					t.Fatalf("%d stale reads out of %d", v, reads)
				}
			})
			t.Run("without", func(t *testing.T) {
				e := e
				if e.dialect == "sqlite" {
					e = clSQLite(t)
				} else {
					e = clMySQL(t, os.Getenv("IDMAP_MYSQL_DSN"), e.name == "MySQLInterpolate")
				}
				reads, v := runCLModel(t, e, false, 1500*time.Millisecond)
				t.Logf("without the change log: %d reads, %d stale", reads, v)
				if v == 0 {
					t.Fatalf("no stale read out of %d without the change log: the model proves nothing", reads)
				}
			})
		})
	}
}

// BenchmarkChangeLogWrite: the triggers' cost per written row, as the
// ratio of an UPDATE of one row on a table with the change log to the
// same UPDATE on an identical table without it, in the same run.
func BenchmarkChangeLogWrite(b *testing.B) {
	for _, e := range clEnvs(b) {
		b.Run(e.name, func(b *testing.B) {
			e.setup(b, 100)
			typ := "INTEGER"
			if e.dialect == "mysql" {
				typ = "BIGINT"
			}
			mustExec(b, e.plain, `CREATE TABLE cl_plain (id `+typ+` PRIMARY KEY, v BIGINT NOT NULL)`)
			mustExec(b, e.plain, `INSERT INTO cl_plain SELECT id, v FROM cl_items`)
			var ns [2]float64
			for i, table := range []string{"cl_plain", "cl_items"} {
				b.Run(table, func(b *testing.B) {
					for n := 0; b.Loop(); n++ {
						if _, err := e.plain.Exec(`UPDATE `+table+` SET v = ? WHERE id = ?`, n, n%100+1); err != nil {
							b.Fatal(err)
						}
					}
					ns[i] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				})
			}
			if ns[0] > 0 {
				b.Logf("%s: %.0f ns per update without the triggers, %.0f with (ratio %.2f)", e.name, ns[0], ns[1], ns[1]/ns[0])
			}
		})
	}
}

// BenchmarkChangeLogDelivery: the delay from another program's commit to
// the moment the change log has expired it here, at the default poll
// interval (p50, p99, max in the log).
func BenchmarkChangeLogDelivery(b *testing.B) {
	for _, e := range clEnvs(b) {
		b.Run(e.name, func(b *testing.B) {
			e.setup(b, 1)
			cl := e.changeLog(b)
			got := make(chan struct{}, 1)
			listening := make(chan struct{}, 1)
			if err := cl.Subscribe(bus.Handler{Message: func(bus.Message) {
				select {
				case got <- struct{}{}:
				default:
				}
			}, Gap: func(g bus.Gap) {
				if g.Resumed {
					listening <- struct{}{}
				}
			}}); err != nil {
				b.Fatal(err)
			}
			<-listening
			var ds []time.Duration
			for n := 0; b.Loop(); n++ {
				start := time.Now()
				if _, err := e.plain.Exec(`UPDATE cl_items SET v = ? WHERE id = 1`, n+1); err != nil {
					b.Fatal(err)
				}
				<-got
				ds = append(ds, time.Since(start))
				time.Sleep(time.Duration(rand.IntN(50_000)) * time.Microsecond) // commits at every phase of the poll
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			p := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
			b.ReportMetric(float64(p(0.5).Microseconds()), "p50-µs")
			b.ReportMetric(float64(p(0.99).Microseconds()), "p99-µs")
			b.Logf("%s: %d deliveries: p50 %v, p99 %v, max %v", e.name, len(ds), p(0.5), p(0.99), ds[len(ds)-1])
		})
	}
}

// TestChangeLogChildProcess: another process (this test binary run again)
// writes to the SQLite file with the plain driver; the write is expired
// here through the change log.
func TestChangeLogChildProcess(t *testing.T) {
	e := clSQLite(t)
	e.setup(t, 1)
	cl := e.changeLog(t, idmap.PollInterval(20*time.Millisecond))
	db := e.open(t, idmap.WithSource(cl))
	waitFor(t, "the change log listens", func() bool { return clListening(db) })
	if v := clGet(t, db, 1); v != 0 {
		t.Fatalf("v = %d", v)
	}
	var file string
	if err := e.plain.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChangeLogChildHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "IDMAP_CL_CHILD_FILE="+file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	start := time.Now()
	waitFor(t, "the child's write expires", func() bool { return clGet(t, db, 1) == 77 })
	t.Logf("the child's write seen %v after it exited", time.Since(start))
}

// TestChangeLogChildHelper is the child of TestChangeLogChildProcess.
func TestChangeLogChildHelper(t *testing.T) {
	file := os.Getenv("IDMAP_CL_CHILD_FILE")
	if file == "" {
		t.Skip("child-process entry point: runs only in the process TestChangeLogChildProcess starts")
	}
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `UPDATE cl_items SET v = 77 WHERE id = 1`)
}

// TestChangeLogHoleTimeout: a sequence number held by a transaction that
// stays open longer than HoleTimeout is a gap (the database is flushed and
// serves nothing until the reader has settled again, once that
// transaction ended); its write is then seen.
func TestChangeLogHoleTimeout(t *testing.T) {
	for _, e := range clEnvs(t) {
		if e.dialect != "mysql" {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			e.setup(t, 2)
			ctx := context.Background()
			cl := e.changeLog(t, idmap.PollInterval(10*time.Millisecond), idmap.HoleTimeout(300*time.Millisecond))
			db := e.open(t, idmap.WithSource(cl))
			waitFor(t, "the change log listens", func() bool { return clListening(db) })
			clGet(t, db, 1)
			tx1, err := e.plain.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx1.Rollback()
			if _, err := tx1.Exec(`UPDATE cl_items SET v = 1 WHERE id = 1`); err != nil {
				t.Fatal(err)
			}
			mustExec(t, e.plain, `UPDATE cl_items SET v = 2 WHERE id = 2`)
			waitFor(t, "the gap", func() bool { s, _ := idmap.StatsOf(db); return s.Bus.Gaps >= 1 })
			if clListening(db) {
				// Settling waits for tx1: not listening while it is open.
				time.Sleep(50 * time.Millisecond)
			}
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the change log listens again", func() bool { return clListening(db) })
			if v := clGet(t, db, 1); v != 1 {
				t.Fatalf("v = %d after the gap, want 1", v)
			}
		})
	}
}
