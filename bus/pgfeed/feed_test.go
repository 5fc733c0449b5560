package pgfeed_test

import (
	"context"
	"database/sql"
	"errors"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/signals"
)

type item struct {
	ID       int64         `db:"id,pk"`
	Name     string        `db:"name"`
	ParentID sql.NullInt64 `db:"parent_id"`
}

func (item) TableName() string { return "items" }

// feedSchema is the schema of most tests: items, and around it every kind
// of write the statement reader cannot see.
var feedSchema = []string{
	`CREATE TABLE parents (id bigint PRIMARY KEY)`,
	`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, parent_id bigint REFERENCES parents ON DELETE CASCADE)`,
	`CREATE TABLE events (id bigserial PRIMARY KEY, item bigint, name text)`,
	`CREATE FUNCTION events_apply() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN UPDATE items SET name = NEW.name WHERE id = NEW.item; RETURN NEW; END $$`,
	`CREATE TRIGGER events_apply AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_apply()`,
	`CREATE FUNCTION rename_item(i bigint, n text) RETURNS bigint LANGUAGE sql AS $$
		UPDATE items SET name = n WHERE id = i RETURNING id $$`,
	`CREATE TABLE stamps (id bigserial PRIMARY KEY, touched bigint DEFAULT rename_item(2, 'by-default'))`,
	`CREATE TABLE renames (id bigint, name text)`,
	`CREATE RULE renames_apply AS ON INSERT TO renames DO ALSO UPDATE items SET name = NEW.name WHERE id = NEW.id`,
	`INSERT INTO parents VALUES (1), (2)`,
	`INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', NULL)`,
}

var feedTables = []string{"parents", "items", "events", "stamps"}

// TestFeedExpiresWhatTheReaderMisses: each write below changes items in a
// way no statement reader sees (another connection, a trigger, a function
// called from SELECT, a DEFAULT, a rule, a cascade, TRUNCATE, psql); the
// feed expires the row loaded before, and the next Get returns the new
// value.
func TestFeedExpiresWhatTheReaderMisses(t *testing.T) {
	e := newEnv(t)
	e.exec(feedSchema...)
	f := e.feed("feed_misses", feedTables)
	db := e.open("feed_misses", idmap.WithSource(f))
	waitUntil(t, "the feed listens", func() bool { return listening(db) })
	ctx := context.Background()

	cases := []struct {
		name  string
		id    int64
		write func(t *testing.T)
		want  string // "" = the row is gone
	}{
		{"plain connection", 1, func(t *testing.T) { e.exec(`UPDATE items SET name = 'plain' WHERE id = 1`) }, "plain"},
		{"pgx connection", 1, func(t *testing.T) {
			c, err := pgx.Connect(ctx, e.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, `UPDATE items SET name = 'pgx' WHERE id = 1`); err != nil {
				t.Fatal(err)
			}
		}, "pgx"},
		{"trigger", 1, func(t *testing.T) { e.exec(`INSERT INTO events (item, name) VALUES (1, 'trigger')`) }, "trigger"},
		{"function called from SELECT", 1, func(t *testing.T) { e.exec(`SELECT rename_item(1, 'function')`) }, "function"},
		{"DEFAULT through idmap", 2, func(t *testing.T) {
			// The reader sees an INSERT into stamps, a table without
			// triggers: only the feed reports what its DEFAULT wrote.
			if _, err := db.ExecContext(ctx, `INSERT INTO stamps DEFAULT VALUES`); err != nil {
				t.Fatal(err)
			}
		}, "by-default"},
		{"rule", 1, func(t *testing.T) { e.exec(`INSERT INTO renames VALUES (1, 'rule')`) }, "rule"},
		{"cascade", 2, func(t *testing.T) { e.exec(`DELETE FROM parents WHERE id = 2`) }, ""},
		{"psql", 1, func(t *testing.T) {
			psql, err := exec.LookPath("psql")
			if err != nil {
				t.Skip("no psql on this machine: the other outside writers (a plain pool, a pgx connection) still run; CI has psql with PostgreSQL 15")
			}
			out, err := exec.Command(psql, e.base, "-v", "ON_ERROR_STOP=1", "-c", "UPDATE "+e.schema+".items SET name = 'psql' WHERE id = 1").CombinedOutput()
			if err != nil {
				t.Fatalf("psql: %v: %s", err, out)
			}
		}, "psql"},
		{"key change", 3, func(t *testing.T) { e.exec(`UPDATE items SET id = 30 WHERE id = 3`) }, ""},
		{"truncate", 1, func(t *testing.T) { e.exec(`TRUNCATE items, parents`) }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := idmap.Get[item](ctx, db, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if idmap.Cached[item](ctx, db, c.id) != p {
				t.Fatal("the row is not served from the map before the write")
			}
			c.write(t)
			waitUntil(t, "the feed expires the row", func() bool { return idmap.Cached[item](ctx, db, c.id) == nil })
			got, err := idmap.Get[item](ctx, db, c.id)
			switch {
			case c.want == "" && !errors.Is(err, sql.ErrNoRows):
				t.Fatalf("Get after the delete = %+v, %v; want sql.ErrNoRows", got, err)
			case c.want != "" && (err != nil || got.Name != c.want):
				t.Fatalf("Get after the write = %+v, %v; want name %q", got, err, c.want)
			}
		})
	}
}

// TestFeedLoadInFlight: a row read by a query that began before a change
// the feed delivers is not kept as fresh (the epochs of local writes).
func TestFeedLoadInFlight(t *testing.T) {
	e := newEnv(t)
	e.exec(feedSchema...)
	tp := &tap{Feed: e.feed("feed_inflight", feedTables)}
	var delivered atomic.Int64
	tp.onMessage(func(m bus.Message) {
		if names(m, "items", 1) {
			delivered.Add(1)
		}
	})
	db := e.open("feed_inflight", idmap.WithSource(tp))
	waitUntil(t, "the feed listens", func() bool { return listening(db) })
	ctx := context.Background()

	rows, err := db.QueryContext(ctx, `SELECT id, name, parent_id FROM items WHERE id = 1`)
	if err != nil {
		t.Fatal(err)
	}
	// The query ran and holds the old row; now another writer changes it
	// and the feed delivers the change before the rows are bound.
	e.exec(`UPDATE items SET name = 'changed' WHERE id = 1`)
	waitUntil(t, "the change is delivered", func() bool { return delivered.Load() > 0 })
	var p *item
	if err := idmap.Bind(rows, &p); err != nil {
		t.Fatal(err)
	}
	if p.Name != "one" {
		t.Fatalf("bound %q; the test needs the row read before the change", p.Name)
	}
	if c := idmap.Cached[item](ctx, db, int64(1)); c != nil {
		t.Fatalf("the row loaded across the change is served as fresh: %+v", c)
	}
	got, err := idmap.Get[item](ctx, db, int64(1))
	if err != nil || got.Name != "changed" {
		t.Fatalf("Get = %+v, %v; want the changed row", got, err)
	}
}

// TestFeedReadYourWrites: a transaction through idmap whose write fires a
// trigger returns from Commit only once the feed delivered the trigger's
// change; a transaction the reader understands does not wait for the feed.
func TestFeedReadYourWrites(t *testing.T) {
	e := newEnv(t)
	e.exec(feedSchema...)
	tp := &tap{Feed: e.feed("feed_ryw", feedTables)}
	var itemsSeen atomic.Int64
	tp.onMessage(func(m bus.Message) {
		if names(m, "items", 1) {
			itemsSeen.Add(1)
		}
	})
	db := e.open("feed_ryw", idmap.WithSource(tp))
	waitUntil(t, "the feed listens", func() bool { return listening(db) })
	ctx := context.Background()

	for i := range 20 {
		before := itemsSeen.Load()
		if _, err := idmap.Get[item](ctx, db, int64(1)); err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		name := "ryw-" + strings.Repeat("x", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (item, name) VALUES (1, $1)`, name); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		// Commit returned: the feed has applied the trigger's change.
		if itemsSeen.Load() == before {
			t.Fatalf("round %d: Commit returned before the feed delivered the trigger's change", i)
		}
		got, err := idmap.Get[item](ctx, db, int64(1))
		if err != nil || got.Name != name {
			t.Fatalf("round %d: Get after Commit = %+v, %v; want %q", i, got, err, name)
		}
		// The same through an autocommit Exec.
		before = itemsSeen.Load()
		name += "-auto"
		if _, err := db.ExecContext(ctx, `INSERT INTO events (item, name) VALUES (1, $1)`, name); err != nil {
			t.Fatal(err)
		}
		if itemsSeen.Load() == before {
			t.Fatalf("round %d: Exec returned before the feed delivered the trigger's change", i)
		}
	}
}

// TestFeedGap: when the feed's walsender is terminated (only this feed's
// own), the database is flushed and serves nothing until a new slot
// streams; then it serves again, and changes expire as before.
func TestFeedGap(t *testing.T) {
	e := newEnv(t)
	e.exec(feedSchema...)
	tp := &tap{Feed: e.feed("feed_gap", feedTables)}
	var lost, resumed atomic.Int64
	tp.onGap(func(g bus.Gap) {
		if g.Resumed {
			resumed.Add(1)
		} else {
			lost.Add(1)
		}
	})
	var flushes atomic.Int64
	disconnect := signals.PostFlush.Connect(func(f signals.Flush) {
		if f.DB == "feed_gap" && f.Reason == signals.BusGap {
			flushes.Add(1)
		}
	})
	defer disconnect()
	db := e.open("feed_gap", idmap.WithSource(tp))
	waitUntil(t, "the feed listens", func() bool { return listening(db) })
	ctx := context.Background()
	if _, err := idmap.Get[item](ctx, db, int64(1)); err != nil {
		t.Fatal(err)
	}
	slot := tp.Slot()
	if slot == "" {
		t.Fatal("no slot while listening")
	}
	var n int
	if err := e.plain.QueryRow(`SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the feed's walsender: %d, %v", n, err)
	}
	waitUntil(t, "the loss is reported", func() bool { return lost.Load() > 0 })
	if idmap.Cached[item](ctx, db, int64(1)) != nil {
		t.Fatal("a row is served from the map after the feed was lost")
	}
	waitUntil(t, "the feed streams again", func() bool { return resumed.Load() > 1 && listening(db) })
	if got := tp.Slot(); got == slot || got == "" {
		t.Fatalf("slot after the gap = %q; want a new one (was %q)", got, slot)
	}
	if s, _ := idmap.StatsOf(db); s.Bus.Gaps == 0 {
		t.Fatal("Stats.Bus.Gaps = 0 after a gap")
	}
	if flushes.Load() < 2 {
		t.Fatalf("%d flushes of reason BusGap; want one at the loss and one at the resumption", flushes.Load())
	}
	// Serving again, and following changes again. The object is held:
	// the shared map holds its objects weakly.
	held, err := idmap.Get[item](ctx, db, int64(1))
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.KeepAlive(held)
	if idmap.Cached[item](ctx, db, int64(1)) == nil {
		t.Fatal("nothing served after the feed is back")
	}
	e.exec(`UPDATE items SET name = 'after-gap' WHERE id = 1`)
	waitUntil(t, "the feed expires the row", func() bool { return idmap.Cached[item](ctx, db, int64(1)) == nil })
	// The old slot is gone with its session.
	if err := e.plain.QueryRow(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the old temporary slot is still there: %d, %v", n, err)
	}
}

type part struct {
	ID   int64  `db:"id,pk"`
	Kind string `db:"kind"`
	Name string `db:"name"`
}

func (part) TableName() string { return "parts" }

type partA struct {
	ID   int64  `db:"id,pk"`
	Kind string `db:"kind"`
	Name string `db:"name"`
}

func (partA) TableName() string { return "parts_a" }

type animal struct {
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
}

func (animal) TableName() string { return "animals" }

// TestFeedPartitions: a change written to a partition (or an inheritance
// child) expires the row under the partition's name and under its
// parent's; a table created after the feed started (a new partition)
// widens to the whole database.
func TestFeedPartitions(t *testing.T) {
	e := newEnv(t)
	e.exec(
		`CREATE TABLE parts (id bigint, kind text, name text, PRIMARY KEY (id)) PARTITION BY RANGE (id)`,
		`CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM (1) TO (6)`,
		`CREATE TABLE parts_b PARTITION OF parts FOR VALUES FROM (6) TO (11)`,
		`CREATE TABLE animals (id bigint PRIMARY KEY, name text)`,
		`CREATE TABLE dogs (PRIMARY KEY (id)) INHERITS (animals)`,
		`INSERT INTO parts SELECT g, 'k', 'p' || g FROM generate_series(1, 10) g`,
		`INSERT INTO dogs VALUES (7, 'rex')`,
	)
	f := e.feed("feed_parts", []string{"parts", "animals"})
	db := e.open("feed_parts", idmap.WithSource(f))
	waitUntil(t, "the feed listens", func() bool { return listening(db) })
	ctx := context.Background()

	var inA int64
	if err := e.plain.QueryRow(`SELECT min(id) FROM parts_a`).Scan(&inA); err != nil {
		t.Fatal(err)
	}
	if _, err := idmap.Get[part](ctx, db, inA); err != nil {
		t.Fatal(err)
	}
	if _, err := idmap.Get[partA](ctx, db, inA); err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE parts_a SET name = 'changed' WHERE id = ` + strconvI(inA))
	waitUntil(t, "the partition's change expires the parent's row", func() bool { return idmap.Cached[part](ctx, db, inA) == nil })
	waitUntil(t, "the partition's change expires the partition's row", func() bool { return idmap.Cached[partA](ctx, db, inA) == nil })

	// Inheritance: a write to the child expires the parent's row.
	if _, err := idmap.Get[animal](ctx, db, int64(7)); err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE dogs SET name = 'max' WHERE id = 7`)
	waitUntil(t, "the child's change expires the parent's row", func() bool { return idmap.Cached[animal](ctx, db, int64(7)) == nil })
	if got, err := idmap.Get[animal](ctx, db, int64(7)); err != nil || got.Name != "max" {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	// A partition created since the feed connected: its parents are not
	// known to the feed, which expires the whole database.
	if _, err := idmap.Get[part](ctx, db, int64(1)); err != nil {
		t.Fatal(err)
	}
	e.exec(`CREATE TABLE parts_c PARTITION OF parts FOR VALUES FROM (11) TO (21)`,
		`INSERT INTO parts VALUES (15, 'k', 'new')`)
	waitUntil(t, "the new partition's change expires the database", func() bool { return idmap.Cached[part](ctx, db, int64(1)) == nil })
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

// TestFeedRelay: one process follows the slot and relays on a bus; an
// instance that has only the bus sees another writer's change.
func TestFeedRelay(t *testing.T) {
	e := newEnv(t)
	e.exec(feedSchema...)
	f := e.feed("feed_relay", feedTables)
	b := bus.NewLoopback()
	defer b.Close()
	if err := f.Relay(b); err != nil {
		t.Fatal(err)
	}
	db := e.open("feed_relay", idmap.WithBus(b))
	waitUntil(t, "the bus listens", func() bool { return listening(db) && f.Slot() != "" })
	ctx := context.Background()
	held, err := idmap.Get[item](ctx, db, int64(1))
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.KeepAlive(held) // the shared map holds its objects weakly
	if idmap.Cached[item](ctx, db, int64(1)) == nil {
		t.Fatal("not served from the map")
	}
	e.exec(`UPDATE items SET name = 'relayed' WHERE id = 1`)
	waitUntil(t, "the relayed change expires the row", func() bool { return idmap.Cached[item](ctx, db, int64(1)) == nil })
}

// TestFeedResumesAfterTableDropped: a table that Tables names and that is
// dropped later does not keep the feed from streaming again after a gap.
func TestFeedResumesAfterTableDropped(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE keep (id bigint PRIMARY KEY)`, `CREATE TABLE gone (id bigint PRIMARY KEY)`)
	f := e.feed("feed_dropped", []string{"keep", "gone"})
	db := e.open("feed_dropped", idmap.WithSource(f))
	waitUntil(t, "the feed listens", func() bool { return listening(db) })
	e.exec(`DROP TABLE gone`)
	slot := f.Slot()
	if _, err := e.plain.Exec(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the feed streams on a new slot", func() bool { s := f.Slot(); return s != "" && s != slot && listening(db) })
}

// TestFeedReopen: a database closed and opened again with the same feed
// subscribes again, and a relay and a database can share one feed.
func TestFeedReopen(t *testing.T) {
	e := newEnv(t)
	e.exec(feedSchema...)
	f := e.feed("feed_reopen", feedTables)
	b := bus.NewLoopback()
	defer b.Close()
	if err := f.Relay(b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for round := range 2 {
		db, err := idmap.Open("pgx", e.dsn, idmap.Name("feed_reopen"), idmap.WithSource(f))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		waitUntil(t, "the feed listens", func() bool { return listening(db) })
		if _, err := idmap.Get[item](ctx, db, int64(1)); err != nil {
			t.Fatal(err)
		}
		e.exec(`UPDATE items SET name = 'reopen` + strconv.Itoa(round) + `' WHERE id = 1`)
		waitUntil(t, "the change expires the row", func() bool { return idmap.Cached[item](ctx, db, int64(1)) == nil })
		db.Close()
	}
	if len(b.Sent()) < 2 {
		t.Fatalf("the relay published %d messages", len(b.Sent()))
	}
}
