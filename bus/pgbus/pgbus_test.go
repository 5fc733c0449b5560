package pgbus_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgbus"
)

// TestOptionsInvalid: an option given a value outside its range is an
// error that names it, never the default in disguise (MaxMessageSize(0),
// PingTimeout(0), ApplicationName("") and ListenerConfig(nil) meant the
// default before, as redisbus's counterparts did not).
func TestOptionsInvalid(t *testing.T) {
	for _, c := range []struct {
		option string
		opt    pgbus.Option
	}{
		{"Channel", pgbus.Channel("")},
		{"Channel", pgbus.Channel(strings.Repeat("c", 64))},
		{"Channel", pgbus.Channel("a\x00b")},
		{"Heartbeat", pgbus.Heartbeat(0)},
		{"Heartbeat", pgbus.Heartbeat(-time.Second)},
		{"PingTimeout", pgbus.PingTimeout(0)},
		{"PingTimeout", pgbus.PingTimeout(-time.Second)},
		{"Backoff", pgbus.Backoff(time.Second, time.Millisecond)},
		{"Backoff", pgbus.Backoff(0, time.Second)},
		{"Backoff", pgbus.Backoff(-time.Second, time.Second)},
		{"QueueSize", pgbus.QueueSize(0)},
		{"QueueSize", pgbus.QueueSize(-1)},
		{"ApplicationName", pgbus.ApplicationName("")},
		{"ApplicationName", pgbus.ApplicationName("a\x00")},
		{"MaxMessageSize", pgbus.MaxMessageSize(0)},
		{"MaxMessageSize", pgbus.MaxMessageSize(-1)},
		{"Key", pgbus.Key(nil)},
		{"Key", pgbus.Key([]byte("short"))},
		{"ListenerConfig", pgbus.ListenerConfig(nil)},
	} {
		// The options are checked before connecting: no server needed.
		// A valid option after the invalid one does not hide it.
		_, err := pgbus.New(context.Background(), "postgres://u:pw@127.0.0.1:1/d", c.opt, pgbus.Channel("ok"))
		if want := "pgbus: " + c.option + ": "; err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "connect") {
			t.Errorf("%s: got %v, want an error beginning %q", c.option, err, want)
		}
	}
}

// TestNewErrorsRedacted checks that a password never appears in an error,
// whether the connection string parses or not.
func TestNewErrorsRedacted(t *testing.T) {
	const pw = "Sup3r-Secr3t-pw"
	for _, dsn := range []string{
		"postgres://u:" + pw + "@127.0.0.1:1/d?sslmode=disable&connect_timeout=5",
		"host=127.0.0.1 port=1 user=u password=" + pw + " sslmode=disable connect_timeout=5",
		"host=127.0.0.1 port=1 user=u password='" + pw + "' sslmode=disable",
		"postgres://u:" + pw + "@127.0.0.1:notaport/d",
		"postgres://u:" + pw + "@127.0.0.1:1/d?sslmode=bogus",
		"host=127.0.0.1 port=x password=" + pw,
		"host=127.0.0.1 password='" + pw,
	} {
		b, err := pgbus.New(context.Background(), dsn)
		if err == nil {
			b.Close()
			t.Errorf("New(%s): no error", strings.ReplaceAll(dsn, pw, "***"))
			continue
		}
		if strings.Contains(err.Error(), pw) || !strings.HasPrefix(err.Error(), "pgbus: ") {
			t.Errorf("New: error %q", strings.ReplaceAll(err.Error(), pw, "***"))
		}
		if _, ok := errors.AsType[*pgconn.ParseConfigError](err); ok {
			t.Error("New: the error unwraps to a ParseConfigError, which holds the connection string")
		}
		if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
			t.Error("New: the error unwraps to a ConnectError, which holds the configuration")
		}
	}
}

func TestPostgresWrongPassword(t *testing.T) {
	cfg := pgConfig(t)
	const pw = "Wr0ng-Passw0rd-xyz"
	cfg.Password = pw
	b, err := pgbus.NewFromConfig(context.Background(), cfg)
	if err == nil {
		b.Close()
		// CI's server (scripts/start-servers.sh) checks passwords over
		// TCP (scram-sha-256): a server that does not is a setup error,
		// not a reason to skip the test.
		t.Fatal("the server accepted a wrong password: run it with password authentication (scram-sha-256 on host lines, as scripts/start-servers.sh does)")
	}
	if strings.Contains(err.Error(), pw) || !strings.HasPrefix(err.Error(), "pgbus: ") {
		t.Errorf("error %q", strings.ReplaceAll(err.Error(), pw, "***"))
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "28P01" {
		t.Errorf("error %v: want a PgError 28P01 as a cause", err)
	}
}

func TestPostgresStatementRoundTrip(t *testing.T) {
	b, _ := newBus(t, nil)
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	ctx := context.Background()
	c := conn(t)

	// pgx, in a transaction: delivered at COMMIT, in order.
	sent := []bus.Message{msg(1, "users", int64(1), int64(2)), msg(2, "books", "isbn-1"), msg(3, "")}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, args := b.Statement(sent)
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		t.Fatalf("executing %q: %v", q, err)
	}
	r.wantNothing(t, 100*time.Millisecond)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range sent {
		if got := r.wantMessage(t); !sameMessage(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}

	// Rolled back: nothing. The next committed message comes first.
	tx, err = c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, args = b.Statement([]bus.Message{msg(4, "users", int64(4))})
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	q, args = b.Statement([]bus.Message{msg(5, "users", int64(5))})
	if _, err := c.Exec(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	if got := r.wantMessage(t); got.Seq != 5 {
		t.Errorf("got message %d, want 5 (4 was rolled back)", got.Seq)
	}

	// database/sql through pgx's stdlib, as idmap executes it.
	db, err := sql.Open("pgx", pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	q, args = b.Statement([]bus.Message{msg(6, "a", 1.5), msg(7, "b", []any{int64(1), "x"})})
	if _, err := stx.ExecContext(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	if err := stx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{6, 7} {
		if got := r.wantMessage(t); got.Seq != seq {
			t.Errorf("got message %d, want %d", got.Seq, seq)
		}
	}
	r.wantNothing(t, 50*time.Millisecond)
}

func TestPostgresPublish(t *testing.T) {
	b, _ := newBus(t, nil)
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	const n = 300
	for i := 1; i <= n; i++ {
		ms := []bus.Message{msg(uint64(2*i-1), "t", int64(i)), msg(uint64(2*i), "u")}
		if err := b.Publish(context.Background(), ms); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	for seq := uint64(1); seq <= 2*n; seq++ {
		if got := r.wantMessage(t); got.Seq != seq {
			t.Fatalf("got message %d, want %d", got.Seq, seq)
		}
	}
	if err := b.Publish(context.Background(), nil); err != nil {
		t.Errorf("Publish(nil): %v", err)
	}
	// Close sends what is queued before it returns.
	if err := b.Publish(context.Background(), []bus.Message{msg(1000, "last")}); err != nil {
		t.Fatal(err)
	}
	other, _ := newBus(t, nil, pgbus.Channel(b.Channel()))
	r2 := newRecorder()
	if err := other.Subscribe(r2.handler(t)); err != nil {
		t.Fatal(err)
	}
	r2.wantResumed(t)
	if err := b.Publish(context.Background(), []bus.Message{msg(1001, "last")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r2.wantMessage(t); got.Seq != 1001 {
		t.Errorf("got message %d, want 1001", got.Seq)
	}
	if err := b.Publish(context.Background(), []bus.Message{msg(1, "t")}); !errors.Is(err, bus.ErrClosed) || !strings.HasPrefix(err.Error(), "pgbus: ") {
		t.Errorf("Publish after Close: %v, want pgbus: … bus.ErrClosed", err)
	}
	if err := b.Subscribe(bus.Handler{}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want bus.ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPostgresLargePayloads(t *testing.T) {
	b, _ := newBus(t, nil)
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)

	// Just under MaxPayload, with keys.
	big := msg(1, "big")
	for prev := 0; ; {
		k := strings.Repeat("k", 50) + string(rune('a'+len(big.Keys)%26)) + strings.Repeat("é", 3)
		big.Keys = append(big.Keys, k)
		n := len(big.Encode())
		if n < prev { // past MaxPayload: encoded for the whole table
			big.Keys = big.Keys[:len(big.Keys)-1]
			break
		}
		prev = n
	}
	if n := len(big.Encode()); n < bus.MaxPayload-100 || len(big.Keys) == 0 {
		t.Fatalf("test message of %d bytes, %d keys", n, len(big.Keys))
	}
	// Past MaxPayload and past MaxKeys: sent for the whole table.
	huge := msg(2, "huge")
	for i := range 200 {
		huge.Keys = append(huge.Keys, strings.Repeat("h", 100)+string(rune('a'+i%26)))
	}
	many := msg(3, "many")
	for i := range bus.MaxKeys + 1 {
		many.Keys = append(many.Keys, int64(i))
	}
	// Many large messages in one statement.
	sent := []bus.Message{big, huge, many}
	for i := range 60 {
		m := big
		m.Seq = uint64(10 + i)
		sent = append(sent, m)
	}
	q, args := b.Statement(sent)
	ctx := context.Background()
	if _, err := conn(t).Exec(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	for i, want := range sent {
		got := r.wantMessage(t)
		if got.Seq != want.Seq {
			t.Fatalf("message %d: seq %d, want %d", i, got.Seq, want.Seq)
		}
		switch want.Seq {
		case 2, 3:
			if len(got.Keys) != 0 || got.Table != want.Table {
				t.Errorf("message %d: %d keys of %q, want the whole table", want.Seq, len(got.Keys), got.Table)
			}
		default:
			if !sameMessage(got, want) {
				t.Errorf("message %d differs", want.Seq)
			}
		}
	}
	// Through Publish too.
	if err := b.Publish(ctx, []bus.Message{big, huge}); err != nil {
		t.Fatal(err)
	}
	if got := r.wantMessage(t); !sameMessage(got, big) {
		t.Error("published big message differs")
	}
	if got := r.wantMessage(t); got.Table != "huge" || len(got.Keys) != 0 {
		t.Error("published huge message is not for its whole table")
	}
}

func TestPostgresUndecodableSkipped(t *testing.T) {
	var logs syncBuffer
	b, _ := newBus(t, nil, pgbus.Logger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	ctx := context.Background()
	c := conn(t)
	for _, p := range []string{"not json", `{"v":2,"o":"x","s":1,"d":"db"}`, `{"v":1,"o":"","s":1,"d":"db"}`, ""} {
		if _, err := c.Exec(ctx, "SELECT pg_notify($1, $2)", b.Channel(), p); err != nil {
			t.Fatal(err)
		}
	}
	// Another channel is not delivered.
	if _, err := c.Exec(ctx, "SELECT pg_notify($1, $2)", b.Channel()+"_other", string(msg(99, "t").Encode())); err != nil {
		t.Fatal(err)
	}
	q, args := b.Statement([]bus.Message{msg(7, "t")})
	if _, err := c.Exec(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	if got := r.wantMessage(t); got.Seq != 7 {
		t.Errorf("got message %d, want 7", got.Seq)
	}
	// Logged: the 1st, 2nd and 4th drop of a cause.
	if n := strings.Count(logs.String(), "dropped a payload"); n != 3 {
		t.Errorf("%d payloads logged as dropped, want 3:\n%s", n, logs.String())
	}
	if d := b.Dropped(); d != (bus.Drops{Malformed: 4}) {
		t.Errorf("Dropped() = %+v; want 4 malformed", d)
	}
}

// TestPostgresListenerTerminated kills the listening backend: the
// subscription reports the loss, reconnects and reports it listens again,
// and messages sent then arrive.
func TestPostgresListenerTerminated(t *testing.T) {
	var logs syncBuffer
	cfg := pgConfig(t)
	b, app := newBus(t, cfg, pgbus.Logger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	c := conn(t)
	ctx := context.Background()
	for round := 1; round <= 3; round++ {
		start := time.Now()
		if n := terminate(t, c, app); n != 1 {
			t.Fatalf("round %d: %d listening backends terminated, want 1", round, n)
		}
		err := r.wantLost(t, waitFor)
		if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
			t.Fatal("the gap's error contains the password")
		}
		if _, ok := errors.AsType[*pgconn.PgError](err); !ok {
			t.Logf("round %d: gap error %v has no PgError cause", round, err)
		}
		r.wantResumed(t)
		t.Logf("round %d: lost (%v) and listening again after %v", round, err, time.Since(start))
		q, args := b.Statement([]bus.Message{msg(uint64(round), "after")})
		if _, err := c.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
		if got := r.wantMessage(t); got.Seq != uint64(round) {
			t.Fatalf("got message %d, want %d", got.Seq, round)
		}
	}
	if cfg.Password != "" && strings.Contains(logs.String(), cfg.Password) {
		t.Error("the logs contain the password")
	}
	if !strings.Contains(logs.String(), "subscription lost") {
		t.Errorf("the loss was not logged:\n%s", logs.String())
	}
}

// TestPostgresStalledConnection stops the network between the listener and
// the server: the heartbeat detects it.
func TestPostgresStalledConnection(t *testing.T) {
	cfg := pgConfig(t)
	p := newProxy(t, cfg.Host+":"+itoa(int(cfg.Port)))
	b, _ := newBus(t, p.config(cfg), pgbus.Heartbeat(200*time.Millisecond), pgbus.PingTimeout(time.Second))
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	ctx := context.Background()
	c := conn(t)
	send := func(seq uint64) {
		t.Helper()
		q, args := b.Statement([]bus.Message{msg(seq, "t")})
		if _, err := c.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	send(1)
	if got := r.wantMessage(t); got.Seq != 1 {
		t.Fatalf("got message %d, want 1", got.Seq)
	}
	// Idle past several heartbeats: still listening.
	r.wantNothing(t, 700*time.Millisecond)

	for round := 1; round <= 2; round++ {
		p.stall()
		start := time.Now()
		err := r.wantLost(t, waitFor)
		t.Logf("round %d: stall detected after %v: %v", round, time.Since(start), err)
		p.resume()
		r.wantResumed(t)
		seq := uint64(10 + round)
		send(seq)
		if got := r.wantMessage(t); got.Seq != seq {
			t.Fatalf("got message %d, want %d", got.Seq, seq)
		}
	}
}

// TestPostgresSubscribeDoesNotBlock subscribes while the server cannot be
// reached: Subscribe returns at once, and the bus listens once it can.
func TestPostgresSubscribeDoesNotBlock(t *testing.T) {
	cfg := pgConfig(t)
	cfg.ConnectTimeout = time.Minute // a blocking Subscribe would exceed waitFor
	p := newProxy(t, cfg.Host+":"+itoa(int(cfg.Port)))
	b, _ := newBus(t, p.config(cfg))
	p.stall()
	r := newRecorder()
	done := make(chan error, 1)
	go func() { done <- b.Subscribe(r.handler(t)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("Subscribe blocks while the server cannot be reached")
	}
	r.wantNothing(t, 300*time.Millisecond)
	p.resume()
	r.wantResumed(t)
}

// TestPostgresCloseStopsGoroutines checks that Close stops everything the
// bus started, whatever state its subscriptions are in.
func TestPostgresCloseStopsGoroutines(t *testing.T) {
	cfg := pgConfig(t)
	c := conn(t)
	base := runtime.NumGoroutine()
	ctx := context.Background()

	// Listening, after a loss, with a publisher.
	b, app := newBus(t, cfg)
	r1, r2 := newRecorder(), newRecorder()
	if err := b.Subscribe(r1.handler(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(r2.handler(t)); err != nil {
		t.Fatal(err)
	}
	r1.wantResumed(t)
	r2.wantResumed(t)
	if err := b.Publish(ctx, []bus.Message{msg(1, "t")}); err != nil {
		t.Fatal(err)
	}
	r1.wantMessage(t)
	r2.wantMessage(t)
	if n := terminate(t, c, app); n != 2 {
		t.Fatalf("%d listeners terminated, want 2", n)
	}
	for _, r := range []*recorder{r1, r2} {
		r.wantLost(t, waitFor)
		r.wantResumed(t)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Listening subscriptions are told, before Close returns, that they no
	// longer are.
	for _, r := range []*recorder{r1, r2} {
		select {
		case e := <-r.ch:
			if e.gap == nil || e.gap.Resumed || !errors.Is(e.gap.Err, bus.ErrClosed) || !strings.HasPrefix(e.gap.Err.Error(), "pgbus: ") {
				t.Errorf("after Close: %v, want a gap lost with bus.ErrClosed", e)
			}
		default:
			t.Error("Close returned before reporting the last gap")
		}
		r.wantNothing(t, 20*time.Millisecond)
	}
	waitGoroutines(t, base)

	// Reconnecting to a server that is gone, and stalled.
	p := newProxy(t, cfg.Host+":"+itoa(int(cfg.Port)))
	withProxy := runtime.NumGoroutine()
	b2, _ := newBus(t, p.config(cfg), pgbus.Heartbeat(100*time.Millisecond), pgbus.PingTimeout(500*time.Millisecond))
	r3 := newRecorder()
	if err := b2.Subscribe(r3.handler(t)); err != nil {
		t.Fatal(err)
	}
	r3.wantResumed(t)
	p.stall()
	r3.wantLost(t, waitFor)
	start := time.Now()
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close while reconnecting through a stalled network took %v", time.Since(start))
	p.resume()
	waitGoroutines(t, withProxy+2) // the proxy may still pipe the last connection
	p.close()
	waitGoroutines(t, base)
	// Nothing is delivered after Close (it was not listening: no last gap).
	r3.wantNothing(t, 50*time.Millisecond)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestPostgresChannelQuoting uses a channel that needs quoting: LISTEN and
// pg_notify must agree on it, case and quotes included.
func TestPostgresChannelQuoting(t *testing.T) {
	u := unique("x") // its length depends on the pid's digits
	if len(u) > 20 {
		u = u[len(u)-20:] // the random part is at the end
	}
	channel := `Idmap "Q" ` + u
	b, _ := newBus(t, nil, pgbus.Channel(channel))
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	q, args := b.Statement([]bus.Message{msg(1, "t")})
	if _, err := conn(t).Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
	if got := r.wantMessage(t); got.Seq != 1 {
		t.Errorf("got message %d, want 1", got.Seq)
	}
}
