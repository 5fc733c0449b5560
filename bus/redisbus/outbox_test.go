package redisbus

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap/bus"
)

func decodeEntries(t *testing.T, es []entry) []bus.Message {
	t.Helper()
	var out []bus.Message
	for _, e := range es {
		m, err := bus.Decode(e.payload)
		if err != nil {
			t.Fatalf("Decode(%s): %v", e.payload, err)
		}
		out = append(out, m)
	}
	return out
}

func TestOutboxWidensPerDatabase(t *testing.T) {
	o := newOutbox(4)
	put := func(msgs ...bus.Message) int {
		t.Helper()
		n, err := o.put(msgs)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := put(msg(1, "a", "t", int64(1)), msg(2, "a", "u"), msg(3, "b", "t", "x")); n != 0 {
		t.Fatalf("widened %d under the bound", n)
	}
	if n := put(msg(4, "a", "t", int64(2))); n != 0 {
		t.Fatalf("widened %d at the bound", n)
	}
	// Past the bound: a's four messages become one, at the place of its
	// newest, with its origin and sequence number; c's only one stays.
	if n := put(msg(5, "c", "t", int64(9))); n != 2 {
		t.Fatalf("widened %d; want 2", n)
	}
	got := decodeEntries(t, o.take(100))
	want := []bus.Message{msg(3, "b", "t", "x"), msg(4, "a", ""), msg(5, "c", "t", int64(9))}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("queue after widening:\n got %v\nwant %v", got, want)
	}
}

func TestOutboxPutBackKeepsOrderAndBound(t *testing.T) {
	o := newOutbox(3)
	if _, err := o.put([]bus.Message{msg(1, "a", "t", int64(1)), msg(2, "a", "t", int64(2))}); err != nil {
		t.Fatal(err)
	}
	batch := o.take(maxBatch)
	if _, err := o.put([]bus.Message{msg(3, "b", "t", int64(3)), msg(4, "a", "t", int64(4))}); err != nil {
		t.Fatal(err)
	}
	// The failed batch goes back before what came after it; 4 > 3 widens.
	if n := o.putBack(batch); n != 2 {
		t.Fatalf("widened %d; want 2", n)
	}
	got := decodeEntries(t, o.take(100))
	want := []bus.Message{msg(3, "b", "t", int64(3)), msg(4, "a", "")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("queue:\n got %v\nwant %v", got, want)
	}
}

func TestOutboxMoreDatabasesThanSize(t *testing.T) {
	o := newOutbox(2)
	for i, db := range []string{"a", "b", "c", "a", "b", "c"} {
		if _, err := o.put([]bus.Message{msg(uint64(i+1), db, "t", int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	got := decodeEntries(t, o.take(100))
	want := []bus.Message{msg(4, "a", ""), msg(5, "b", ""), msg(6, "c", "")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("queue:\n got %v\nwant %v", got, want)
	}
}

func TestOutboxClosed(t *testing.T) {
	o := newOutbox(2)
	o.close()
	if _, err := o.put([]bus.Message{msg(1, "a", "")}); !errors.Is(err, bus.ErrClosed) || !strings.HasPrefix(err.Error(), "redisbus: ") {
		t.Fatalf("put on a closed outbox: %v", err)
	}
}

// TestOptionErrors: an option given a value outside its range is an error
// that names it, by the rule pgbus follows too.
func TestOptionErrors(t *testing.T) {
	opts := &redis.Options{Addr: "127.0.0.1:1"}
	for _, c := range []struct {
		option string
		opt    Option
	}{
		{"Channel", Channel("")},
		{"OutboxSize", OutboxSize(0)},
		{"OutboxSize", OutboxSize(-1)},
		{"Heartbeat", Heartbeat(0)},
		{"Heartbeat", Heartbeat(-time.Second)},
		{"DrainTimeout", DrainTimeout(-1)},
		{"ClientName", ClientName("")},
		{"SubscribeOptions", SubscribeOptions(nil)},
		{"MaxMessageSize", MaxMessageSize(0)},
		{"MaxMessageSize", MaxMessageSize(-1)},
		{"Key", Key(nil)},
		{"Key", Key([]byte("short"))},
	} {
		if b, err := New(opts, c.opt, Channel("ok")); err == nil {
			b.Close()
			t.Errorf("%s: no error", c.option)
		} else if want := "redisbus: " + c.option + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %q does not begin with %q", c.option, err, want)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil): no error")
	}
	b, err := New(opts, DrainTimeout(0)) // zero has a meaning of its own: drop the outbox at Close
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

func TestURLErrorsHidePassword(t *testing.T) {
	const pw = "s3cr3t-Pw"
	for _, u := range []string{
		"redis://user:" + pw + "@localhost:notaport/0",
		"redis://user:" + pw + "@localhost:6379/notadb",
		"redis://user:" + pw + "@localhost:6379/0?nosuchoption=1",
		"redis://user:" + pw + "@[::1/0",
		"http://user:" + pw + "@localhost:6379/0",
		"redis://user:" + pw + "\x7f@localhost:6379/0",
	} {
		b, err := NewURL(u)
		if err == nil {
			b.Close()
			t.Errorf("NewURL(%q): no error", u)
			continue
		}
		if strings.Contains(err.Error(), pw) || !strings.HasPrefix(err.Error(), "redisbus: ") {
			t.Errorf("NewURL: error %q shows the password or lacks the prefix", err)
		}
	}
	b, err := NewURL("redis://user:" + pw + "@127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPasswordOf(t *testing.T) {
	for u, want := range map[string]string{
		"redis://u:pw@h:1/0":    "pw",
		"redis://u:p@w@h:1/0":   "p@w",
		"redis://u:pw@h:x/0":    "pw",
		"redis://h:1/0":         "",
		"redis://:pw@[::1/0":    "pw",
		"redis://u@h:1/0":       "",
		"redis://u:pw\x7f@h:1/": "pw\x7f",
	} {
		if got := passwordOf(u); got != want {
			t.Errorf("passwordOf(%q) = %q; want %q", u, got, want)
		}
	}
}

// TestRetryOnNewMessage: a message queued while the sender waits out the
// backoff of earlier failures is published soon after the server is back,
// not when that backoff ends (an hour here): a commit made once the server
// answers again reaches the other instances at once.
func TestRetryOnNewMessage(t *testing.T) {
	addr := redisAddr(t)
	ch := testChannel(t)
	saved := retryBackoff
	retryBackoff = func(int) time.Duration { return time.Hour }
	t.Cleanup(func() { retryBackoff = saved })

	p := newProxy(t, addr)
	pub := newBus(t, p.addr(), Channel(ch))
	sub := newBus(t, addr, Channel(ch))
	r := subscribe(t, sub)

	p.pause()
	if err := pub.Publish(context.Background(), []bus.Message{msg(1, "db", "t", int64(1))}); err != nil {
		t.Fatal(err)
	}
	// The publish times out behind the paused proxy (ReadTimeout) and the
	// sender starts its hour of backoff.
	waitFor(t, "a failed publish", func() bool { return pub.sendFailures.Load() > 0 })
	p.resume()
	if err := pub.Publish(context.Background(), []bus.Message{msg(2, "db", "t", int64(2))}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{1, 2} {
		if m := r.nextMessage(t, 30*time.Second); m.Seq != want {
			t.Fatalf("got message %d; want %d", m.Seq, want)
		}
	}
}
