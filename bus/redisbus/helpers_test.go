package redisbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/internal/busadapter"
)

// randomID returns 16 random hex digits.
var randomID = busadapter.RandomID

// redisAddr returns the address of the test server, scripts/start-redis.sh's
// IDMAP_REDIS_ADDR, or skips the test.
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("IDMAP_REDIS_ADDR")
	if addr == "" {
		t.Skip("IDMAP_REDIS_ADDR is not set: start a server with eval \"$(scripts/start-redis.sh)\"")
	}
	return addr
}

// testOptions have timeouts short enough for failures to show quickly,
// long enough for a loaded machine.
func testOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:         addr,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	}
}

// newBus returns a Bus on addr, closed at the end of the test.
func newBus(t testing.TB, addr string, opts ...Option) *Bus {
	t.Helper()
	opts = append([]Option{Logger(testLogger(t)), Heartbeat(200 * time.Millisecond), ClientName("idmap-test-" + randomID())}, opts...)
	b, err := New(testOptions(addr), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// testChannel returns a channel of the test's own.
func testChannel(t testing.TB) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "idmap-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + hex.EncodeToString(r[:])
}

// testLogger logs to t until the end of the test (later records, from
// goroutines a failed test left, are dropped).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) }) // runs after the Close of newBus
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

// An event is what a recorder heard: a message or a gap.
type event struct {
	msg *bus.Message
	gap *bus.Gap
	at  time.Time
}

func (e event) String() string {
	if e.gap != nil {
		return fmt.Sprintf("gap{resumed=%v err=%v}", e.gap.Resumed, e.gap.Err)
	}
	return fmt.Sprintf("msg{%s #%d %s.%s %v}", e.msg.Origin, e.msg.Seq, e.msg.DB, e.msg.Table, e.msg.Keys)
}

// A recorder is a handler that keeps what it hears, for next to read.
type recorder struct {
	mu     sync.Mutex
	events []event // protected by mu
	read   int     // protected by mu: events returned by next
	notify chan struct{}
	active atomic.Int32 // handler calls in progress, to check they never overlap
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) handler(t testing.TB) bus.Handler {
	add := func(e event) {
		if r.active.Add(1) != 1 {
			t.Errorf("handler called concurrently")
		}
		e.at = time.Now()
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
		r.active.Add(-1)
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
	return bus.Handler{
		Message: func(m bus.Message) { add(event{msg: &m}) },
		Gap:     func(g bus.Gap) { add(event{gap: &g}) },
	}
}

// next returns the next event, failing the test after timeout.
func (r *recorder) next(t testing.TB, timeout time.Duration) event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		if r.read < len(r.events) {
			e := r.events[r.read]
			r.read++
			r.mu.Unlock()
			return e
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("no event within %v", timeout)
		}
	}
}

// nextGap skips messages up to the next gap and checks it.
func (r *recorder) nextGap(t testing.TB, resumed bool, timeout time.Duration) bus.Gap {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		e := r.next(t, time.Until(end))
		if e.gap == nil {
			continue
		}
		if e.gap.Resumed != resumed {
			t.Fatalf("got %v; want a gap with resumed=%v", e, resumed)
		}
		if !resumed && e.gap.Err == nil {
			t.Fatalf("got %v; want a gap with an error", e)
		}
		return *e.gap
	}
}

// nextMessage returns the next message, failing on a gap.
func (r *recorder) nextMessage(t testing.TB, timeout time.Duration) bus.Message {
	t.Helper()
	e := r.next(t, timeout)
	if e.msg == nil {
		t.Fatalf("got %v; want a message", e)
	}
	return *e.msg
}

// subscribe subscribes a recorder on b and waits until it listens.
func subscribe(t testing.TB, b *Bus) *recorder {
	t.Helper()
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	r.nextGap(t, true, 10*time.Second)
	return r
}

func msg(seq uint64, db, table string, keys ...any) bus.Message {
	return bus.Message{Origin: "test", Seq: seq, DB: db, Table: table, Keys: keys}
}

// killPubSub closes the pub/sub connections of b, as an administrator (or a
// failover) would: only b's, by their client name, on a server that
// others share.
func killPubSub(t testing.TB, addr string, b *Bus) {
	t.Helper()
	if n := killClients(t, addr, b.subClient.Options().ClientName); n == 0 {
		t.Fatal("killPubSub: no pub/sub connection of the bus")
	}
}

// A proxy forwards TCP connections to a target, and can hold what it
// forwards (pause): a network that silently stops delivering.
type proxy struct {
	ln   net.Listener
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	target  string                // protected by mu: where new connections go
	paused  chan struct{}         // protected by mu: closed when resumed; nil when running
	conns   map[net.Conn]struct{} // protected by mu
	clients []net.Conn            // protected by mu: the client side of each connection
	stopped bool                  // protected by mu
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// retarget sends the connections accepted from now on to target (the
// open ones stay where they are).
func (p *proxy) retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			return
		}
		p.mu.Lock()
		p.clients = append(p.clients, c)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gate waits while the proxy is paused; false once it is closed.
func (p *proxy) gate() bool {
	p.mu.Lock()
	ch := p.paused
	p.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-p.done:
		return false
	}
}

func (p *proxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = make(chan struct{})
	}
}

func (p *proxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
}

// reset closes every connection through the proxy with a TCP reset (no
// FIN); the proxy keeps accepting new ones.
func (p *proxy) reset() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.clients = nil
	p.mu.Unlock()
	for c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// killClients closes the connections of type pubsub named name, as an
// administrator (or a failover) would, and returns how many there were:
// only this test's own clients, on a server others share.
func killClients(t testing.TB, addr, name string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	list, err := c.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		var id, nm string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			} else if v, ok := strings.CutPrefix(f, "name="); ok {
				nm = v
			}
		}
		if id == "" || nm != name {
			continue
		}
		if err := c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
			t.Fatalf("CLIENT KILL ID %s: %v", id, err)
		}
		n++
	}
	return n
}

// inject sends data to the clients, as if the server had sent it; call it
// while paused, so that it comes between two replies.
func (p *proxy) inject(data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		_, _ = c.Write(data)
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	close(p.done)
	p.ln.Close()
	p.wg.Wait()
}
