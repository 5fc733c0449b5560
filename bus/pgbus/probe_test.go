package pgbus_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgbus"
)

// TestPostgresProbe: a probe comes back through the subscription, behind
// the notifications committed before it (bus.Prover).
func TestPostgresProbe(t *testing.T) {
	b, _ := newBus(t, nil)
	r := newRecorder()
	h := r.handler(t)
	probes := make(chan uint64, 16)
	h.Probe = func(token uint64) {
		r.ch <- event{} // in line with the messages
		probes <- token
	}
	if err := b.Subscribe(h); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	c := conn(t)
	ctx := context.Background()
	q, args := b.Statement([]bus.Message{msg(1, "t")})
	if _, err := c.Exec(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	if err := b.Probe(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if got := r.wantMessage(t); got.Seq != 1 {
		t.Fatalf("got message %d, want 1", got.Seq)
	}
	if e := r.next(t, waitFor); e.msg != nil || e.gap != nil {
		t.Fatalf("got %v, want the probe", e)
	}
	if tok := <-probes; tok != 7 {
		t.Fatalf("probe %d came back, want 7", tok)
	}
	// Another bus on the same channel does not see this bus's probes.
	b2, _ := newBus(t, nil, pgbus.Channel(b.Channel()))
	r2 := newRecorder()
	h2 := r2.handler(t)
	h2.Probe = func(uint64) { t.Error("a probe of another bus came through") }
	if err := b2.Subscribe(h2); err != nil {
		t.Fatal(err)
	}
	r2.wantResumed(t)
	if err := b.Probe(ctx, 8); err != nil {
		t.Fatal(err)
	}
	select {
	case tok := <-probes:
		if tok != 8 {
			t.Fatalf("probe %d, want 8", tok)
		}
	case <-time.After(waitFor):
		t.Fatal("probe 8 never came back")
	}
	_ = b.Close()
	if err := b.Probe(ctx, 9); err == nil {
		t.Error("Probe on a closed bus: no error")
	}
}

// TestPostgresAttachLogger: without Logger, the bus logs where the
// database that idmap attaches to it logs.
func TestPostgresAttachLogger(t *testing.T) {
	b, _ := newBus(t, nil)
	var buf syncBuf
	b.Attach(bus.Attachment{DB: "app", Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	r := newRecorder()
	if err := b.Subscribe(r.handler(t)); err != nil {
		t.Fatal(err)
	}
	r.wantResumed(t)
	if !strings.Contains(buf.String(), "pgbus: listening") {
		t.Errorf("the attached database's logger got %q; want the bus's records", buf.String())
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
