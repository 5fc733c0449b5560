package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

var (
	longModel  = flag.Bool("idmap.long", false, "run the randomized model test for long (5,000 steps per worker)")
	modelSteps = flag.Int("idmap.steps", 0, "steps per worker of the randomized model test (overrides -idmap.long)")
)

// modelStepCount returns the steps per worker of a randomized model run: n,
// 60 with -short, 5,000 with -idmap.long, -idmap.steps if set.
func modelStepCount(n int) int {
	if testing.Short() {
		n = 60
	}
	if *longModel {
		n = 5000
	}
	if *modelSteps > 0 {
		n = *modelSteps
	}
	return n
}

// Item is the model of the randomized test.
type Item struct {
	ID   int64 `db:"id"`
	Grp  int64 `db:"grp"`
	Val  int64 `db:"val"`
	Seen int   `db:"-"`
}

func (Item) TableName() string { return "items" }

// ItemID and NamedItem: the same rows through a key field of a named type,
// whose keys the maps keep as int64s (keyTypeOf); the model loads and
// checks them beside Item's.
type ItemID int64

type NamedItem struct {
	ID  ItemID `db:"id"`
	Grp int64  `db:"grp"`
	Val int64  `db:"val"`
}

func (NamedItem) TableName() string { return "items" }

// TestRandomizedModel runs goroutines that load, write, delete, flush and
// run transactions at random, with scopes and the shared map, and checks
// after each step that everything the maps would serve without a query
// equals the database's committed row (inside a transaction: what the
// transaction reads). Run it long with -idmap.long.
func TestRandomizedModel(t *testing.T) {
	workers, steps := 4, modelStepCount(250)
	dir := t.TempDir()
	dsn := "file:" + filepath.Join(dir, "model.db") + "?_journal_mode=WAL&_busy_timeout=20000&_txlock=immediate"
	db, err := sql.Open("idmap+sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Read-only transactions use a handle without _txlock=immediate, so
	// that they hold no write lock and others commit while their snapshot
	// is open; it shares the maps of db (same name).
	snapDSN := "file:" + filepath.Join(dir, "model.db") + "?_journal_mode=WAL&_busy_timeout=20000"
	snap, err := idmap.Open("sqlite3", snapDSN, idmap.Name(idmap.NameOf(db)))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	truth, err := sql.Open("sqlite3", dsn) // the database itself, not through idmap
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	runModel(t, modelDBs{db: db, snap: snap, truth: truth, q: func(s string) string { return s },
		insertIgnore: "INSERT OR IGNORE INTO items (id, grp, val) VALUES (?, ?, ?)"}, workers, steps)
}

// TestRandomizedModelInstances runs the model on three instances of one
// SQLite database (three names, so three sets of maps), told of each
// other's writes by a bus that delivers at once, and cut now and then (a
// lost subscription: every message sent meanwhile is lost).
func TestRandomizedModelInstances(t *testing.T) {
	workers, steps := 4, modelStepCount(250)
	dir := t.TempDir()
	dsn := "file:" + filepath.Join(dir, "model.db") + "?_journal_mode=WAL&_busy_timeout=20000&_txlock=immediate"
	rl := &relay{}
	open := func(name, dsn string) *sql.DB {
		db, err := idmap.Open("sqlite3", dsn, idmap.Name(name), idmap.WithBus(rl.end(name)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open("instance-a", dsn)
	peers := []*sql.DB{open("instance-b", dsn), open("instance-c", dsn)}
	snap := open("instance-a", "file:"+filepath.Join(dir, "model.db")+"?_journal_mode=WAL&_busy_timeout=20000")
	truth, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	runModel(t, modelDBs{db: db, snap: snap, truth: truth, q: func(s string) string { return s },
		insertIgnore: "INSERT OR IGNORE INTO items (id, grp, val) VALUES (?, ?, ?)", peers: peers, relay: rl}, workers, steps)
}

// relay is a bus between instances of one process: what one publishes is
// delivered to the others at once, from the publishing goroutine, renamed
// to their database's name.
type relay struct {
	mu                 sync.Mutex
	ends               []*relayEnd
	isCut              bool
	cutMu              sync.Mutex // held while cut changes, so that no delivery straddles it
	cuts               atomic.Int64
	dropped, delivered atomic.Int64
}

type relayEnd struct {
	r    *relay
	name string
	mu   sync.Mutex // serialises deliveries to h
	h    bus.Handler
}

func (r *relay) end(name string) *relayEnd {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.ends {
		if e.name == name {
			return e
		}
	}
	e := &relayEnd{r: r, name: name}
	r.ends = append(r.ends, e)
	return e
}

func (e *relayEnd) Subscribe(h bus.Handler) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.h = h
	e.r.cutMu.Lock()
	defer e.r.cutMu.Unlock()
	if !e.r.isCut {
		h.Gap(bus.Gap{Resumed: true})
	}
	return nil
}

func (e *relayEnd) Publish(_ context.Context, msgs []bus.Message) error {
	e.r.cutMu.Lock()
	defer e.r.cutMu.Unlock()
	e.r.mu.Lock()
	ends := append([]*relayEnd(nil), e.r.ends...)
	e.r.mu.Unlock()
	for _, o := range ends {
		if o == e {
			continue
		}
		o.mu.Lock()
		for _, m := range msgs {
			if e.r.isCut || o.h.Message == nil {
				e.r.dropped.Add(1)
				continue
			}
			m.DB, m.Origin = o.name, "relay-"+e.name
			o.h.Message(m)
			e.r.delivered.Add(1)
		}
		o.mu.Unlock()
	}
	return nil
}

func (r *relay) setCut(cut bool) {
	r.cutMu.Lock()
	defer r.cutMu.Unlock()
	if r.isCut == cut {
		return
	}
	r.isCut = cut
	if cut {
		r.cuts.Add(1)
	}
	r.mu.Lock()
	ends := append([]*relayEnd(nil), r.ends...)
	r.mu.Unlock()
	for _, e := range ends {
		e.mu.Lock()
		if e.h.Gap != nil {
			e.h.Gap(bus.Gap{Resumed: !cut})
		}
		e.mu.Unlock()
	}
}

func (r *relay) cut()     { r.setCut(true) }
func (r *relay) restore() { r.setCut(false) }

// modelDBs are the databases of one run of the model: db through idmap,
// snap for read-only transactions (sharing db's maps), truth without idmap.
type modelDBs struct {
	db, snap, truth *sql.DB
	q               func(string) string // placeholders for the dialect
	insertIgnore    string              // insert (id, grp, val) unless the key exists
	// snapLevel is the isolation of the read-only transactions: one that
	// reads a snapshot, so that their in-transaction checks (two reads) see
	// one state while others commit.
	snapLevel sql.IsolationLevel
	// peers are other instances of the same database (other names, so
	// other maps), told of db's writes, and db of theirs, by relay. Reads
	// and writes go to db or a peer at random; checks look at all.
	peers []*sql.DB
	relay *relay
	// schema, when set, creates the items table (with id, grp and val)
	// instead of the plain one.
	schema []string
	// extra, when set, is one more kind of write, run at random with the
	// writers' lock held.
	extra func(r *rand.Rand, ctx context.Context) error
	// expectViolations: the run is a check of the checker (idmap's
	// sources of truth are turned off): it must find violations.
	expectViolations bool
}

// pick returns db or one of its peers.
func (m *modelDBs) pick(r *rand.Rand) *sql.DB {
	if n := len(m.peers); n > 0 {
		if i := r.IntN(n + 1); i < n {
			return m.peers[i]
		}
	}
	return m.db
}

// TestRandomizedModelServers runs the model, shorter, on MariaDB and
// PostgreSQL.
func TestRandomizedModelServers(t *testing.T) {
	steps := 120
	if *modelSteps > 0 {
		steps = *modelSteps
	}
	ran := false
	if dsn := os.Getenv("IDMAP_MYSQL_DSN"); dsn != "" {
		ran = true
		t.Run("MySQL", func(t *testing.T) {
			name := fmt.Sprintf("idmap_model_%s_%d", idmap.RunID, dbSeq.Add(1))
			cfg := idmap.MySQLTestDatabase(t, dsn, name)
			db, err := sql.Open("idmap+mysql", cfg.FormatDSN())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			truth, err := sql.Open("mysql", cfg.FormatDSN())
			if err != nil {
				t.Fatal(err)
			}
			defer truth.Close()
			runModel(t, modelDBs{db: db, snap: db, truth: truth, q: func(s string) string { return s },
				insertIgnore: "INSERT IGNORE INTO items (id, grp, val) VALUES (?, ?, ?)",
				snapLevel:    sql.LevelRepeatableRead}, 4, steps)
		})
	}
	if dsn := os.Getenv("IDMAP_PG_DSN"); dsn != "" {
		ran = true
		t.Run("Postgres", func(t *testing.T) {
			schema := fmt.Sprintf("idmap_model_%s_%d", idmap.RunID, dbSeq.Add(1))
			sdsn := idmap.PostgresTestSchema(t, dsn, schema)
			db, err := sql.Open("idmap+pgx", sdsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			truth, err := sql.Open("pgx", sdsn)
			if err != nil {
				t.Fatal(err)
			}
			defer truth.Close()
			q := (&testDriver{dialect: "postgres"}).q
			runModel(t, modelDBs{db: db, snap: db, truth: truth, q: q,
				insertIgnore: q("INSERT INTO items (id, grp, val) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"),
				snapLevel:    sql.LevelRepeatableRead}, 4, steps)
		})
	}
	if !ran {
		t.Skip("MySQL and Postgres model runs skipped: IDMAP_MYSQL_DSN and IDMAP_PG_DSN are not set")
	}
}

// runModel is the randomized model on one set of databases.
func runModel(t *testing.T, m modelDBs, workers, steps int) {
	const rows, groups = 16, 4
	db, snap, truth := m.db, m.snap, m.truth
	ctx := context.Background()
	schema := m.schema
	if schema == nil {
		schema = []string{"CREATE TABLE items (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, val INTEGER NOT NULL)"}
	}
	for _, q := range schema {
		mustExec(t, db, q)
	}
	for i := 1; i <= rows; i++ {
		mustExec(t, db, m.q("INSERT INTO items (id, grp, val) VALUES (?, ?, ?)"), i, i%groups, 0)
	}

	// Writers hold mu while they change committed data (a statement in
	// autocommit, or a whole transaction); checks hold it for reading, so
	// that nothing commits between what a map serves and what the database
	// says.
	var mu sync.RWMutex
	var ops, checks, violations, errs atomic.Int64
	report := func(format string, args ...any) {
		if violations.Add(1) <= 10 && !m.expectViolations {
			t.Errorf(format, args...)
		}
	}
	committed := func(id int64) (Item, bool) {
		var it Item
		err := truth.QueryRowContext(ctx, m.q("SELECT id, grp, val FROM items WHERE id = ?"), id).Scan(&it.ID, &it.Grp, &it.Val)
		if errors.Is(err, sql.ErrNoRows) {
			return it, false
		}
		if err != nil {
			t.Error(err)
		}
		return it, true
	}
	check := func(w int, ctx context.Context) {
		mu.RLock()
		defer mu.RUnlock()
		checks.Add(1)
		for i, inst := range append([]*sql.DB{db}, m.peers...) {
			for id := int64(1); id <= rows+2; id++ {
				c := idmap.Cached[Item](ctx, inst, id)
				if n := idmap.Cached[NamedItem](ctx, inst, ItemID(id)); n != nil {
					want, ok := committed(id)
					if !ok {
						report("worker %d: instance %d: Cached serves named item %d, which the database does not have", w, i, id)
					} else if int64(n.ID) != want.ID || n.Grp != want.Grp || n.Val != want.Val {
						report("worker %d: instance %d: Cached serves named %+v; the database has %+v", w, i, *n, want)
					}
				}
				if c == nil {
					continue
				}
				want, ok := committed(id)
				if !ok {
					report("worker %d: instance %d: Cached serves item %d, which the database does not have", w, i, id)
				} else if c.ID != want.ID || c.Grp != want.Grp || c.Val != want.Val {
					report("worker %d: instance %d: Cached serves %+v; the database has %+v", w, i, *c, want)
				}
			}
		}
	}
	checkTx := func(w int, ctx context.Context, tx *sql.Tx) {
		for id := int64(1); id <= rows+2; id++ {
			var want Item
			err := tx.QueryRowContext(ctx, m.q("SELECT id, grp, val FROM items WHERE id = ?"), id).Scan(&want.ID, &want.Grp, &want.Val)
			got, gerr := idmap.Get[Item](ctx, tx, id)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if gerr == nil {
					report("worker %d in tx: Get serves item %d, which the transaction does not see", w, id)
				}
			case err != nil || gerr != nil:
				errs.Add(1)
			case got.Grp != want.Grp || got.Val != want.Val:
				report("worker %d in tx: Get serves %+v; the transaction reads %+v", w, *got, want)
			}
		}
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			ctx := context.Background()
			scoped := false
			newUnit := func() {
				scoped = r.IntN(3) != 0
				if scoped {
					ctx = idmap.NewContext(context.Background())
				} else {
					ctx = context.Background() // the shared map
				}
			}
			newUnit()
			var held []any // keep objects reachable, as an application would
			for range steps {
				ops.Add(1)
				db := m.pick(r)
				id := int64(1 + r.IntN(rows+2))
				switch op := r.IntN(100); {
				case op < 25: // Bind by predicate, a whole or a partial row
					q := m.q("SELECT id, grp, val FROM items WHERE grp = ?")
					if r.IntN(4) == 0 {
						q = m.q("SELECT id, val FROM items WHERE grp = ?")
					}
					rs, err := db.QueryContext(ctx, q, r.IntN(groups))
					if err == nil && r.IntN(3) == 0 {
						var its []*NamedItem
						if err = idmap.Bind(rs, &its); err == nil {
							for _, it := range its {
								held = append(held, it)
							}
						}
					} else if err == nil {
						var its []*Item
						if err = idmap.Bind(rs, &its); err == nil {
							for _, it := range its {
								held = append(held, it)
							}
						}
					}
					if err != nil {
						errs.Add(1)
					}
				case op < 45 && r.IntN(3) == 0: // Get through the named key
					if it, err := idmap.Get[NamedItem](ctx, db, ItemID(id)); err == nil {
						held = append(held, it)
					} else if !errors.Is(err, sql.ErrNoRows) {
						errs.Add(1)
					}
				case op < 45: // Get
					if it, err := idmap.Get[Item](ctx, db, id); err == nil {
						if scoped {
							it.Seen++ // a temporary field of an object this worker owns
						}
						held = append(held, it)
					} else if !errors.Is(err, sql.ErrNoRows) {
						errs.Add(1)
					}
				case m.extra != nil && op < 55: // the run's own writes (and 92–95 below)
					mu.Lock()
					err := m.extra(r, ctx)
					mu.Unlock()
					if err != nil {
						errs.Add(1)
					}
				case op < 60: // write by key
					mu.Lock()
					_, err := db.ExecContext(ctx, m.q("UPDATE items SET val = ? WHERE id = ?"), r.IntN(1000), id)
					mu.Unlock()
					if err != nil {
						errs.Add(1)
					}
				case op < 68: // write by predicate
					mu.Lock()
					_, err := db.ExecContext(ctx, m.q("UPDATE items SET val = val + 1, grp = (grp + 1) % ? WHERE grp = ?"), groups, r.IntN(groups))
					mu.Unlock()
					if err != nil {
						errs.Add(1)
					}
				case op < 74: // delete by key, or insert it back
					mu.Lock()
					var err error
					if r.IntN(2) == 0 {
						_, err = db.ExecContext(ctx, m.q("DELETE FROM items WHERE id = ?"), id)
					} else {
						_, err = db.ExecContext(ctx, m.insertIgnore, id, r.IntN(groups), r.IntN(1000))
					}
					mu.Unlock()
					if err != nil {
						errs.Add(1)
					}
				case op < 79: // a read-only transaction, while others commit
					tctx := ctx
					if r.IntN(2) == 0 {
						tctx = context.Background() // its own scope
					}
					tx, err := snap.BeginTx(tctx, &sql.TxOptions{Isolation: m.snapLevel})
					if err != nil {
						errs.Add(1)
						break
					}
					for range 1 + r.IntN(4) {
						k := int64(1 + r.IntN(rows+2))
						if r.IntN(2) == 0 {
							if _, err := idmap.Get[Item](tctx, tx, k); err != nil && !errors.Is(err, sql.ErrNoRows) {
								errs.Add(1)
							}
						} else {
							var its []*Item
							rs, err := tx.QueryContext(tctx, m.q("SELECT id, grp, val FROM items WHERE grp = ?"), r.IntN(groups))
							if err == nil {
								err = idmap.Bind(rs, &its)
							}
							if err != nil {
								errs.Add(1)
							}
						}
					}
					checkTx(w, tctx, tx)
					if err := tx.Commit(); err != nil {
						errs.Add(1)
					}
				case op < 86: // a transaction that commits or rolls back
					mu.Lock()
					tctx := ctx
					if r.IntN(2) == 0 {
						tctx = context.Background() // its own scope
					}
					tx, err := db.BeginTx(tctx, nil)
					if err != nil {
						mu.Unlock()
						errs.Add(1)
						break
					}
					for range 1 + r.IntN(4) {
						k := int64(1 + r.IntN(rows+2))
						switch r.IntN(4) {
						case 0:
							_, err = tx.ExecContext(tctx, m.q("UPDATE items SET val = ? WHERE id = ?"), r.IntN(1000), k)
						case 1:
							_, err = tx.ExecContext(tctx, m.q("UPDATE items SET val = (val * 2) % 100000 WHERE grp = ?"), r.IntN(groups))
						case 2:
							_, err = idmap.Get[Item](tctx, tx, k)
							if errors.Is(err, sql.ErrNoRows) {
								err = nil
							}
						default:
							var its []*Item
							var rs *sql.Rows
							if rs, err = tx.QueryContext(tctx, m.q("SELECT id, grp, val FROM items WHERE grp = ?"), r.IntN(groups)); err == nil {
								err = idmap.Bind(rs, &its)
							}
						}
						if err != nil {
							errs.Add(1)
						}
					}
					checkTx(w, tctx, tx)
					if r.IntN(2) == 0 {
						err = tx.Commit()
					} else {
						err = tx.Rollback()
					}
					mu.Unlock()
					if err != nil {
						errs.Add(1)
					}
				case op < 88: // flush
					switch r.IntN(3) {
					case 0:
						idmap.Flush(ctx)
					case 1:
						idmap.FlushType[Item](ctx)
					default:
						if len(held) > 0 {
							idmap.FlushInstance(ctx, held[r.IntN(len(held))])
						}
					}
				case op < 92: // the unit of work ends
					newUnit()
					held = held[:0]
					if m.relay != nil && r.IntN(4) == 0 {
						// The instances' subscriptions are lost for a
						// while: writes meanwhile are never delivered.
						m.relay.cut()
						defer m.relay.restore()
					}
					if m.relay != nil && r.IntN(2) == 0 {
						m.relay.restore()
					}
				case op < 96 && m.extra != nil:
					mu.Lock()
					err := m.extra(r, ctx)
					mu.Unlock()
					if err != nil {
						errs.Add(1)
					}
				default: // a read that is not a Bind
					var n int
					_ = db.QueryRowContext(ctx, "SELECT count(*) FROM items").Scan(&n)
				}
				if len(held) > 256 {
					held = held[len(held)-64:]
				}
				check(w, ctx)
				check(w, context.Background())
			}
		}()
	}
	wg.Wait()
	t.Logf("randomized model (%d instances): %d operations, %d checks, %d violations, %d statement errors (busy, expected under contention)",
		1+len(m.peers), ops.Load(), checks.Load(), violations.Load(), errs.Load())
	if m.relay != nil {
		t.Logf("relay: %d messages delivered, %d dropped while cut, %d cuts", m.relay.delivered.Load(), m.relay.dropped.Load(), m.relay.cuts.Load())
	}
	switch {
	case m.expectViolations && violations.Load() == 0:
		t.Errorf("no violation found with idmap's sources of truth turned off: the model cannot fail")
	case !m.expectViolations && violations.Load() > 0:
		t.Errorf("%d violations", violations.Load())
	}
	_ = fmt.Sprint
}
