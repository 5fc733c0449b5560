package pgbus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgbus"
)

// waitFor bounds every wait of the tests: past it, something was never
// delivered.
const waitFor = 30 * time.Second

// pgDSN returns the test server's DSN, or skips the test.
func pgDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("IDMAP_PG_DSN")
	if dsn == "" {
		t.Skip("IDMAP_PG_DSN is not set: skipping the PostgreSQL tests " +
			"(cd /work/main && eval \"$(scripts/start-servers.sh)\" starts a server and sets it)")
	}
	return dsn
}

// pgConfig returns the parsed test DSN.
func pgConfig(t testing.TB) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgDSN(t))
	if err != nil {
		t.Fatalf("parsing IDMAP_PG_DSN: %v", err)
	}
	return cfg
}

// unique returns a name unique to this run, usable as a channel name and an
// application_name.
func unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + strconv.Itoa(os.Getpid()) + "_" + hex.EncodeToString(b[:])
}

// newBus opens a bus on the test server with a channel and a listener name
// of its own, closed at the end of the test.
func newBus(t testing.TB, cfg *pgx.ConnConfig, opts ...pgbus.Option) (*pgbus.Bus, string) {
	t.Helper()
	if cfg == nil {
		cfg = pgConfig(t)
	}
	app := unique("pgbus_test_listener")
	opts = append([]pgbus.Option{pgbus.Channel(unique("pgbus_test")), pgbus.ApplicationName(app)}, opts...)
	b, err := pgbus.NewFromConfig(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("pgbus.NewFromConfig: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, app
}

// v0Table creates, through c, a table named unique(prefix) with the row
// (1, 'v0') in (id bigint PRIMARY KEY, name text NOT NULL), dropped at the
// end of the test, and returns its name.
func v0Table(t testing.TB, c *pgx.Conn, prefix string) string {
	t.Helper()
	ctx := context.Background()
	table := unique(prefix)
	ident := pgx.Identifier{table}.Sanitize()
	if _, err := c.Exec(ctx, "CREATE TABLE "+ident+" (id bigint PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.Exec(context.Background(), "DROP TABLE IF EXISTS "+ident) })
	if _, err := c.Exec(ctx, "INSERT INTO "+ident+" VALUES (1, 'v0')"); err != nil {
		t.Fatal(err)
	}
	return table
}

// conn opens a plain connection to the test server.
func conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, pgConfig(t))
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// terminate kills the backends whose application_name is app, and returns
// how many there were.
func terminate(t testing.TB, c *pgx.Conn, app string) int {
	t.Helper()
	var n int
	err := c.QueryRow(context.Background(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n)
	if err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	return n
}

// event is one call to a Handler.
type event struct {
	msg *bus.Message
	gap *bus.Gap
}

func (e event) String() string {
	switch {
	case e.msg != nil:
		return "message " + e.msg.Table + "#" + strconv.FormatUint(e.msg.Seq, 10)
	case e.gap.Resumed:
		return "gap resumed"
	default:
		return "gap lost: " + errString(e.gap.Err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// recorder records what a subscription delivers, and checks that its
// Handler is never called concurrently.
type recorder struct {
	ch     chan event
	inside sync.Mutex
}

func newRecorder() *recorder { return &recorder{ch: make(chan event, 100000)} }

func (r *recorder) handler(t testing.TB) bus.Handler {
	enter := func() {
		if !r.inside.TryLock() {
			t.Error("handler called concurrently")
			r.inside.Lock()
		}
	}
	return bus.Handler{
		Message: func(m bus.Message) {
			enter()
			defer r.inside.Unlock()
			r.ch <- event{msg: &m}
		},
		Gap: func(g bus.Gap) {
			enter()
			defer r.inside.Unlock()
			r.ch <- event{gap: &g}
		},
	}
}

func (r *recorder) next(t testing.TB, within time.Duration) event {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(within):
		t.Fatalf("nothing delivered within %v", within)
		return event{}
	}
}

func (r *recorder) wantResumed(t testing.TB) {
	t.Helper()
	if e := r.next(t, waitFor); e.gap == nil || !e.gap.Resumed {
		t.Fatalf("got %v, want gap resumed", e)
	}
}

func (r *recorder) wantLost(t testing.TB, within time.Duration) error {
	t.Helper()
	e := r.next(t, within)
	if e.gap == nil || e.gap.Resumed {
		t.Fatalf("got %v, want gap lost", e)
	}
	if e.gap.Err == nil {
		t.Fatal("lost subscription reported without an error")
	}
	if !strings.HasPrefix(e.gap.Err.Error(), "pgbus:") {
		t.Errorf("gap error %q does not start with pgbus:", e.gap.Err)
	}
	return e.gap.Err
}

func (r *recorder) wantMessage(t testing.TB) bus.Message {
	t.Helper()
	e := r.next(t, waitFor)
	if e.msg == nil {
		t.Fatalf("got %v, want a message", e)
	}
	return *e.msg
}

func (r *recorder) wantNothing(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("got %v, want nothing", e)
	case <-time.After(d):
	}
}

// msg returns a test message.
func msg(seq uint64, table string, keys ...any) bus.Message {
	return bus.Message{Origin: "test", Seq: seq, DB: "testdb", Table: table, Keys: keys}
}

// sameMessage compares two messages by their encoding.
func sameMessage(a, b bus.Message) bool { return string(a.Encode()) == string(b.Encode()) }

// proxy is a loopback TCP proxy to the test server that can stop
// forwarding (a stalled network) and start again.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool       // protected by mu
	holdNew bool       // protected by mu: new connections wait
	closed  bool       // protected by mu
	conns   []net.Conn // protected by mu
	wg      sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// config returns cfg pointing at the proxy.
func (p *proxy) config(cfg *pgx.ConnConfig) *pgx.ConnConfig {
	cfg = cfg.Copy()
	a := p.ln.Addr().(*net.TCPAddr)
	cfg.Host, cfg.Port, cfg.Fallbacks = "127.0.0.1", uint16(a.Port), nil
	return cfg
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		for p.holdNew && !p.closed {
			p.cond.Wait()
		}
		p.mu.Unlock()
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies from src to dst, holding what it read while stalled.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.stalled && !p.closed {
				p.cond.Wait()
			}
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *proxy) resume() {
	p.mu.Lock()
	p.stalled = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// hold makes new connections wait (without a byte forwarded) until
// release; established ones go on.
func (p *proxy) hold() {
	p.mu.Lock()
	p.holdNew = true
	p.mu.Unlock()
}

func (p *proxy) release() {
	p.mu.Lock()
	p.holdNew = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// reset closes every connection through the proxy with a TCP reset (no
// FIN), as a middlebox that forgets its connections does; the proxy keeps
// accepting new ones.
func (p *proxy) reset() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// addr returns the proxy's address.
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.cond.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

// waitGoroutines waits until no more than n goroutines run.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := runtime.NumGoroutine()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines running, want at most %d:\n%s", got, n, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
