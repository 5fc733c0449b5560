package redisbus

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap/bus"
)

// TestProbe: a probe comes back through the subscription, behind what
// was published before it, and only to this bus's subscriptions
// (bus.Prover).
func TestProbe(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	b := newBus(t, addr, Channel(ch))
	probes := make(chan uint64, 16)
	r := newRecorder()
	h := r.handler(t)
	h.Probe = func(tok uint64) { probes <- tok }
	if err := b.Subscribe(h); err != nil {
		t.Fatal(err)
	}
	r.nextGap(t, true, 10*time.Second)
	b2 := newBus(t, addr, Channel(ch))
	h2 := newRecorder().handler(t)
	h2.Probe = func(uint64) { t.Error("a probe of another bus came through") }
	if err := b2.Subscribe(h2); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b2.Publish(ctx, []bus.Message{msg(1, "db", "t")}); err != nil {
		t.Fatal(err)
	}
	if got := r.nextMessage(t, 10*time.Second); got.Seq != 1 {
		t.Fatalf("got message %d, want 1", got.Seq)
	}
	if err := b.Probe(ctx, 7); err != nil {
		t.Fatal(err)
	}
	select {
	case tok := <-probes:
		if tok != 7 {
			t.Fatalf("probe %d, want 7", tok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the probe never came back")
	}
}

// TestClientNameAndAttach: the subscription connection is named (CLIENT
// LIST shows it), and without Logger the bus logs where the attached
// database logs.
func TestClientNameAndAttach(t *testing.T) {
	addr := redisAddr(t)
	name := "idmap-test-" + randomID()
	b, err := New(testOptions(addr), Channel(testChannel(t)), ClientName(name))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var buf syncBuf
	b.Attach(bus.Attachment{DB: "app", Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.nextGap(t, true, 10*time.Second)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, "name="+name) {
		t.Errorf("CLIENT LIST has no client named %s", name)
	}
	b.log().Warn("redisbus: test record")
	if !strings.Contains(buf.String(), "redisbus: test record") {
		t.Errorf("the attached database's logger got %q", buf.String())
	}
	if _, err := New(testOptions(addr), ClientName("a b")); err == nil {
		t.Error("ClientName with a space: no error")
	}
	if _, err := NewContext(context.Background(), &redis.Options{Addr: "127.0.0.1:1", Password: "s3cret", DialTimeout: time.Second}); err == nil || strings.Contains(err.Error(), "s3cret") || !strings.HasPrefix(err.Error(), "redisbus: connecting to 127.0.0.1:1") {
		t.Errorf("NewContext on a closed port: %v", err)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
