package pgfeed_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgfeed"
)

// waitFor bounds every wait of the tests: past it, something was never
// delivered.
const waitFor = 30 * time.Second

func pgDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("IDMAP_PG_DSN")
	if dsn == "" {
		t.Skip("IDMAP_PG_DSN is not set: skipping the PostgreSQL change feed tests")
	}
	return dsn
}

// unique returns a lower-case name unique to this run.
func unique(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + strconv.Itoa(os.Getpid()) + "_" + hex.EncodeToString(b[:])
}

// env is one test's schema on the test server, with a plain connection
// pool (seen by no idmap) on it.
type env struct {
	t      testing.TB
	base   string // the server's DSN
	dsn    string // the server's DSN, with search_path set to the schema
	schema string
	plain  *sql.DB
}

// newEnv makes a schema of the test's own, dropped at the end with the
// publications the test made.
func newEnv(t testing.TB) *env {
	t.Helper()
	base := pgDSN(t)
	schema := unique("pgfeed")
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("dropping the schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	e := &env{t: t, base: base, dsn: u.String(), schema: schema}
	e.plain, err = sql.Open("pgx", e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.plain.Close() })
	return e
}

// exec runs statements on the plain pool.
func (e *env) exec(stmts ...string) {
	e.t.Helper()
	for _, s := range stmts {
		if _, err := e.plain.Exec(s); err != nil {
			e.t.Fatalf("%s: %v", s, err)
		}
	}
}

// feed opens a feed on a publication of its own over tables (of the
// test's schema), closed and dropped at the end of the test.
func (e *env) feed(db string, tables []string, opts ...pgfeed.Option) *pgfeed.Feed {
	e.t.Helper()
	pub := unique("pub")
	qualified := make([]string, len(tables))
	for i, t := range tables {
		qualified[i] = e.schema + "." + t
	}
	all := append([]pgfeed.Option{pgfeed.Publication(pub), pgfeed.Tables(qualified...)}, opts...)
	f, err := pgfeed.New(context.Background(), e.dsn, db, all...)
	if err != nil {
		e.t.Fatalf("pgfeed.New: %v", err)
	}
	e.t.Cleanup(func() {
		f.Close()
		if _, err := e.plain.Exec("DROP PUBLICATION IF EXISTS " + pub); err != nil {
			e.t.Errorf("dropping the publication: %v", err)
		}
	})
	return f
}

// open opens an idmap database named name on the schema with opts, and
// waits until its sources listen.
func (e *env) open(name string, opts ...idmap.Option) *sql.DB {
	e.t.Helper()
	db, err := idmap.Open("pgx", e.dsn, append([]idmap.Option{idmap.Name(name)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

// subscribeProbes subscribes to f, with a handler that ignores messages,
// waits until the feed streams, and returns the tokens of the probes it
// delivers.
func subscribeProbes(t testing.TB, f *pgfeed.Feed) <-chan uint64 {
	t.Helper()
	probes := make(chan uint64, 16)
	subscribe(t, f, bus.Handler{
		Message: func(bus.Message) {},
		Probe:   func(token uint64) { probes <- token },
	})
	return probes
}

// subscribe subscribes h to f and waits until the feed streams (a Gap
// with Resumed, which h.Gap, if set, is told of too).
func subscribe(t testing.TB, f *pgfeed.Feed, h bus.Handler) {
	t.Helper()
	resumed := make(chan struct{}, 1)
	gap := h.Gap
	h.Gap = func(g bus.Gap) {
		if gap != nil {
			gap(g)
		}
		if g.Resumed {
			select {
			case resumed <- struct{}{}:
			default:
			}
		}
	}
	if err := f.Subscribe(h); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
	case <-time.After(waitFor):
		t.Fatal("the feed does not stream")
	}
}

// waitUntil polls cond until it holds, or fails the test.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitFor); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func listening(db *sql.DB) bool {
	s, _ := idmap.StatsOf(db)
	return s.Bus.Listening
}

// tap wraps a feed and calls seen after each message it delivered, once
// the subscriber has applied it. It passes probes through (the feed is a
// bus.Prover).
type tap struct {
	*pgfeed.Feed
	mu   sync.Mutex
	seen []func(bus.Message)
	gaps []func(bus.Gap)
}

func (tp *tap) onMessage(fn func(bus.Message)) {
	tp.mu.Lock()
	tp.seen = append(tp.seen, fn)
	tp.mu.Unlock()
}

func (tp *tap) onGap(fn func(bus.Gap)) {
	tp.mu.Lock()
	tp.gaps = append(tp.gaps, fn)
	tp.mu.Unlock()
}

func (tp *tap) Subscribe(h bus.Handler) error {
	return tp.Feed.Subscribe(bus.Handler{
		Message: func(m bus.Message) {
			h.Message(m)
			tp.mu.Lock()
			fns := tp.seen
			tp.mu.Unlock()
			for _, fn := range fns {
				fn(m)
			}
		},
		Gap: func(g bus.Gap) {
			h.Gap(g)
			tp.mu.Lock()
			fns := tp.gaps
			tp.mu.Unlock()
			for _, fn := range fns {
				fn(g)
			}
		},
		Probe: h.Probe,
	})
}

// names reports whether m expires table's key k (or the whole table, or
// the whole database).
func names(m bus.Message, table string, k int64) bool {
	if m.Table == "" {
		return true
	}
	if !strings.EqualFold(m.Table, table) {
		return false
	}
	if len(m.Keys) == 0 {
		return true
	}
	for _, key := range m.Keys {
		if n, ok := key.(int64); ok && n == k {
			return true
		}
	}
	return false
}
