package redisbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap/bus"
)

func TestRoundTrip(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	sub := newBus(t, addr, Channel(ch))
	pub := newBus(t, addr, Channel(ch))
	r := subscribe(t, sub)

	sent := []bus.Message{
		msg(1, "app", "users", int64(1), int64(-7)),
		msg(2, "app", "big", uint64(1<<63+5)),
		msg(3, "app", "floats", 1.5),
		msg(4, "app", "strings", "héllo", ""),
		msg(5, "app", "pairs", []any{int64(1), "a"}, []any{"b", 2.25}),
		msg(6, "app", "whole_table"),
		msg(7, "app", ""),
	}
	if err := pub.Publish(context.Background(), sent); err != nil {
		t.Fatal(err)
	}
	for _, want := range sent {
		got := r.nextMessage(t, 5*time.Second)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v; want %#v", got, want)
		}
	}

	// A bus hears its own messages too (idmap ignores them by origin).
	if err := sub.Publish(context.Background(), []bus.Message{msg(8, "app", "own")}); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMessage(t, 5*time.Second); got.Seq != 8 {
		t.Fatalf("got %v; want own message 8", got)
	}
}

func TestSkipsForeignPayloads(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	sub := newBus(t, addr, Channel(ch))
	r := subscribe(t, sub)

	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	for _, p := range []string{"not json", `{"v":99,"o":"x","d":"app"}`, `{"v":1,"o":"x","d":"app","k":[1]}`} {
		if err := c.Publish(ctx, ch, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, ch, msg(1, "app", "t", int64(1)).Encode()).Err(); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMessage(t, 5*time.Second); got.Seq != 1 {
		t.Fatalf("got %v; want the valid message only", got)
	}
}

func TestOrder(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	sub := newBus(t, addr, Channel(ch))
	const n = 3000
	pub := newBus(t, addr, Channel(ch), OutboxSize(n)) // never widens here
	r := subscribe(t, sub)

	// Four writers; each one's messages must arrive in its order, and all
	// of them in the order Publish queued them.
	var mu sync.Mutex // makes seq order = queue order
	var seq uint64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			db := string(rune('a' + w))
			for i := 0; i < n/4; {
				k := min(1+i%5, n/4-i)
				msgs := make([]bus.Message, k)
				mu.Lock()
				for j := range msgs {
					seq++
					msgs[j] = msg(seq, db, "t", int64(i+j))
				}
				err := pub.Publish(context.Background(), msgs)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				i += k
			}
		})
	}
	wg.Wait()
	// A batch whose PUBLISH timed out is sent again: it may arrive twice.
	again := 0
	for next := uint64(1); next <= n; {
		got := r.nextMessage(t, 10*time.Second)
		switch {
		case got.Seq == next:
			next++
		case got.Seq < next:
			again++
		default:
			t.Fatalf("got %v; want message %d", got, next)
		}
	}
	if again > 0 {
		t.Logf("%d messages received twice", again)
	}
}

func TestOutboxOverflowWidens(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	sub := newBus(t, addr, Channel(ch))
	r := subscribe(t, sub)
	p := newProxy(t, addr)
	pub := newBus(t, p.addr(), Channel(ch), OutboxSize(16))

	ctx := context.Background()
	if err := pub.Publish(ctx, []bus.Message{msg(1, "a", "t", int64(1))}); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMessage(t, 5*time.Second); got.Seq != 1 {
		t.Fatalf("got %v; want message 1", got)
	}

	p.pause() // the network stops delivering: PUBLISH times out
	var seq uint64 = 1
	pending := map[uint64]bus.Message{} // sent, and not yet known delivered
	for i := range 100 {
		db := "a"
		if i%10 == 9 {
			db = "b"
		}
		seq++
		m := msg(seq, db, "t", int64(i))
		pending[seq] = m
		if err := pub.Publish(ctx, []bus.Message{m}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if n := pub.out.len(); n > 16 {
		t.Fatalf("outbox holds %d messages; want at most 16", n)
	}
	p.resume()

	// Nothing is lost: each message arrives, or a whole-database message
	// at least as new (the messages in flight when the network stopped may
	// arrive as they were, or twice).
	whole := 0
	for len(pending) > 0 {
		got := r.nextMessage(t, 15*time.Second)
		if got.Origin != "test" || got.DB != "a" && got.DB != "b" {
			t.Fatalf("got %v, which was not sent", got)
		}
		if got.Whole() {
			whole++
			for s, m := range pending {
				if m.DB == got.DB && s <= got.Seq {
					delete(pending, s)
				}
			}
			continue
		}
		if got.Seq > seq || !reflect.DeepEqual(got, msg(got.Seq, got.DB, "t", int64(got.Seq-2))) {
			t.Fatalf("got %v, which was not sent", got)
		}
		delete(pending, got.Seq)
	}
	if whole == 0 {
		t.Fatal("no whole-database message")
	}
}

func TestClientKillReportsGapAndResumes(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	sub := newBus(t, addr, Channel(ch))
	pub := newBus(t, addr, Channel(ch))
	r := subscribe(t, sub)

	killPubSub(t, addr, sub)
	g := r.nextGap(t, false, 5*time.Second)
	if !strings.HasPrefix(g.Err.Error(), "redisbus: ") {
		t.Errorf("gap error %q lacks the redisbus: prefix", g.Err)
	}
	r.nextGap(t, true, 10*time.Second)

	if err := pub.Publish(context.Background(), []bus.Message{msg(1, "a", "t", int64(1))}); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMessage(t, 5*time.Second); got.Seq != 1 {
		t.Fatalf("got %v; want message 1", got)
	}

	// Again: each loss is reported once, each resumption once.
	killPubSub(t, addr, sub)
	r.nextGap(t, false, 5*time.Second)
	r.nextGap(t, true, 10*time.Second)
	if err := pub.Publish(context.Background(), []bus.Message{msg(2, "a", "t", int64(2))}); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMessage(t, 5*time.Second); got.Seq != 2 {
		t.Fatalf("got %v; want message 2", got)
	}
}

func TestHeartbeatDetectsStall(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	p := newProxy(t, addr)
	sub := newBus(t, p.addr(), Channel(ch), Heartbeat(200*time.Millisecond))
	pub := newBus(t, addr, Channel(ch))
	r := subscribe(t, sub)

	p.pause() // the connection stays open, but nothing arrives
	start := time.Now()
	g := r.nextGap(t, false, 5*time.Second)
	t.Logf("stall detected after %v: %v", time.Since(start).Round(time.Millisecond), g.Err)
	if !errors.Is(g.Err, errNoPong) {
		t.Errorf("gap error %v; want one of the heartbeat", g.Err)
	}

	p.resume()
	r.nextGap(t, true, 15*time.Second)
	if err := pub.Publish(context.Background(), []bus.Message{msg(1, "a", "t", int64(1))}); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMessage(t, 5*time.Second); got.Seq != 1 {
		t.Fatalf("got %v; want message 1", got)
	}
}

func TestUnannouncedResubscriptionIsAGap(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	p := newProxy(t, addr)
	sub := newBus(t, p.addr(), Channel(ch), Heartbeat(time.Second))
	r := subscribe(t, sub)

	// A second confirmation on a subscription that listens is what
	// go-redis shows when it replaced the connection by itself.
	p.pause()
	p.inject(fmt.Appendf(nil, "*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n", len(ch), ch))
	p.resume()
	g := r.nextGap(t, false, 5*time.Second)
	if !strings.Contains(g.Err.Error(), "replaced") {
		t.Errorf("gap error %v; want the connection replaced", g.Err)
	}
	r.nextGap(t, true, 5*time.Second)
}

func TestServerUnreachableAtFirst(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	p := newProxy(t, addr)
	p.pause()
	sub := newBus(t, p.addr(), Channel(ch))
	r := newRecorder()
	// Subscribe must return while the server is still unreachable (the
	// proxy stays paused): it does not wait for a connection. The limit is
	// a liveness bound, far above any scheduling delay, not a speed check.
	done := make(chan error, 1)
	go func() { done <- sub.Subscribe(r.handler(t)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Subscribe blocked while the server was unreachable")
	}
	if err := sub.Publish(context.Background(), []bus.Message{msg(1, "a", "t", int64(1))}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	r.mu.Lock()
	early := append([]event(nil), r.events...)
	r.mu.Unlock()
	for _, e := range early {
		if e.gap != nil && e.gap.Resumed || e.msg != nil {
			t.Fatalf("heard %v before the server could answer", e)
		}
	}
	p.resume()
	r.nextGap(t, true, 15*time.Second)
	// The message queued while unreachable is published once reachable,
	// perhaps before the server had the subscription (then it is lost to
	// it, as the Gap semantics allow); a later one arrives.
	if err := sub.Publish(context.Background(), []bus.Message{msg(2, "a", "t", int64(2))}); err != nil {
		t.Fatal(err)
	}
	for {
		got := r.nextMessage(t, 15*time.Second)
		if got.Seq == 2 {
			break
		}
		if got.Seq != 1 {
			t.Fatalf("got %v; want message 1 or 2", got)
		}
	}
}

func TestCloseDrainsOutbox(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	sub := newBus(t, addr, Channel(ch))
	r := subscribe(t, sub)
	pub, err := New(testOptions(addr), Channel(ch), Logger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []bus.Message
	for i := range 500 {
		msgs = append(msgs, msg(uint64(i+1), "a", "t", int64(i)))
	}
	if err := pub.Publish(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), msgs[:1]); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close: %v; want ErrClosed", err)
	}
	if err := pub.Subscribe(bus.Handler{}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v; want ErrClosed", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for i := range msgs {
		if got := r.nextMessage(t, 5*time.Second); got.Seq != uint64(i+1) {
			t.Fatalf("got %v; want message %d", got, i+1)
		}
	}
}

func TestCloseReportsLoss(t *testing.T) {
	addr := redisAddr(t)
	b, err := New(testOptions(addr), Channel(testChannel(t)), Logger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if g := r.nextGap(t, false, time.Second); !errors.Is(g.Err, bus.ErrClosed) {
		t.Fatalf("last gap %v; want ErrClosed", g.Err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != r.read {
		t.Fatalf("events after the last gap: %v", r.events[r.read:])
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	round := func(unreachable bool) {
		target := addr
		var p *proxy
		if unreachable {
			p = newProxy(t, addr)
			p.pause()
			target = p.addr()
		}
		b, err := New(testOptions(target), Channel(ch), Heartbeat(100*time.Millisecond), Logger(nil), DrainTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		rs := []*recorder{newRecorder(), newRecorder()}
		for _, r := range rs {
			if err := b.Subscribe(r.handler(t)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Publish(context.Background(), []bus.Message{msg(1, "a", "t", int64(1))}); err != nil {
			t.Fatal(err)
		}
		if !unreachable {
			for _, r := range rs {
				r.nextGap(t, true, 5*time.Second)
			}
		} else {
			time.Sleep(300 * time.Millisecond)
		}
		start := time.Now()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("Close (unreachable=%v) took %v", unreachable, time.Since(start).Round(time.Millisecond))
		if p != nil {
			p.close()
		}
	}
	round(false) // warm up: go-redis and the runtime start goroutines of their own once
	before := runtime.NumGoroutine()
	for _, unreachable := range []bool{false, true, false} {
		round(unreachable)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	addr := redisAddr(t)
	const pw = "s3cr3t-Pw-0f-redisbus"
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	opts := testOptions(addr)
	opts.Username = "idmap"
	opts.Password = pw // the server has no such user: every command fails
	b, err := New(opts, Channel(testChannel(t)), Logger(log))
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), []bus.Message{msg(1, "a", "")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		out := buf.String()
		mu.Unlock()
		if strings.Contains(out, "publishing failed") && strings.Contains(out, "cannot subscribe") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure logged:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	t.Logf("log:\n%s", out)
	if strings.Contains(out, pw) {
		t.Fatalf("the password is in the log:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, `msg="redisbus: `) {
			t.Errorf("log line without the redisbus: prefix: %s", line)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		t.Errorf("heard %v without a connection", e)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
