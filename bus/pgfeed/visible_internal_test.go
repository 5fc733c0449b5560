package pgfeed

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/go-idmap/idmap/bus"
)

func TestSnapshotShows(t *testing.T) {
	const e1 = 1 << 32 // the first transaction of epoch 1
	for _, c := range []struct {
		snap string
		xid  uint32
		want bool
	}{
		{"100:105:100,102", 99, true},   // finished before xmin
		{"100:105:100,102", 100, false}, // in progress
		{"100:105:100,102", 101, true},  // finished between
		{"100:105:100,102", 102, false},
		{"100:105:100,102", 104, true},
		{"100:100:", 99, true},
		{"100:105:", 105, false}, // not begun when the snapshot was taken
		{"3:3:", 4294967295, false},
		// Epoch 1: a low xid is of epoch 1, a high one of epoch 0.
		{fmt.Sprintf("%d:%d:%d", e1+5, e1+10, e1+7), 7, false},
		{fmt.Sprintf("%d:%d:%d", e1+5, e1+10, e1+7), 8, true},
		{fmt.Sprintf("%d:%d:", e1-2, e1+10), 4294967294, true},          // e1-2, finished
		{fmt.Sprintf("%d:%d:%d", e1-2, e1+10, e1-1), 4294967295, false}, // e1-1, in progress
		{fmt.Sprintf("%d:%d:", e1+5, e1+10), 11, true},                  // e1+11 is above xmax: epoch 0's 11, long finished
	} {
		s, err := parseSnapshot(c.snap)
		if err != nil {
			t.Fatalf("%s: %v", c.snap, err)
		}
		if got := s.shows(c.xid); got != c.want {
			t.Errorf("snapshot %s shows %d = %v; want %v", c.snap, c.xid, got, c.want)
		}
	}
	for _, bad := range []string{"", "1:2", "a:2:", "5:2:", "1:2:x", "1:2:3,", "1:2:3:4"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("parseSnapshot(%q) accepted it", bad)
		}
	}
}

// TestConfirmOrder: held transactions are delivered in commit order, each
// once a snapshot shows it, and a mark or probe only after everything
// held before it.
func TestConfirmOrder(t *testing.T) {
	f := &Feed{waiters: map[string]chan struct{}{}, origin: "test", db: "db"}
	mark := make(chan struct{})
	f.waiters["m1"] = mark
	var got []string
	h := &subscribers{f: f, subs: []bus.Handler{{
		Message: func(m bus.Message) {
			got = append(got, "msg "+m.Table)
			select {
			case <-mark:
				got = append(got, "(mark delivered)")
			default:
			}
		},
		Probe: func(token uint64) { got = append(got, fmt.Sprint("probe ", token)) },
	}}}
	var snap string
	d := &decoder{f: f, h: h, snap: func(context.Context) (snapshot, error) { return parseSnapshot(snap) }}
	d.hold(pendingTx{xid: 10, msgs: []bus.Message{{Table: "a"}}})
	d.hold(pendingTx{marks: []string{"m1"}})
	d.hold(pendingTx{xid: 11, msgs: []bus.Message{{Table: "b"}}, probes: []uint64{5}})
	if d.waiting != 2 {
		t.Fatalf("waiting = %d; want 2", d.waiting)
	}
	confirm := func(s string) {
		t.Helper()
		snap = s
		if err := d.confirm(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	confirm("10:12:10") // 11 is visible, 10 is not: nothing goes
	if len(got) != 0 || len(d.pending) != 3 {
		t.Fatalf("delivered %v, %d held, while the first transaction is not visible", got, len(d.pending))
	}
	if d.retryAt.IsZero() {
		t.Error("no retry time after a transaction was not visible")
	}
	confirm("12:12:")
	want := []string{"msg a", "msg b", "(mark delivered)", "probe 5"}
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v; want %v", got, want)
	}
	select {
	case <-mark:
	default:
		t.Error("the mark held behind the first transaction was not delivered")
	}
	if len(d.pending) != 0 || d.waiting != 0 || !d.retryAt.IsZero() {
		t.Errorf("after delivering everything: %d held, %d waiting, retry at %v", len(d.pending), d.waiting, d.retryAt)
	}
	// With nothing held, a mark outside a transaction goes at once.
	got = nil
	d.hold(pendingTx{probes: []uint64{6}})
	if !slices.Equal(got, []string{"probe 6"}) || len(d.pending) != 0 {
		t.Errorf("a probe with nothing held: delivered %v, %d held", got, len(d.pending))
	}
}

// TestHeldBound: past maxHeld transactions held behind an invisible one,
// the stream ends (a gap) instead of holding more.
func TestHeldBound(t *testing.T) {
	d := &decoder{f: &Feed{}}
	for i := range maxHeld {
		d.hold(pendingTx{xid: uint32(i + 1), msgs: []bus.Message{{Table: "t"}}})
	}
	if err := d.overflow(); err != nil {
		t.Fatalf("%d held: %v", maxHeld, err)
	}
	d.hold(pendingTx{xid: maxHeld + 1, msgs: []bus.Message{{Table: "t"}}})
	if err := d.overflow(); err == nil {
		t.Fatalf("%d held: no error", maxHeld+1)
	}
}
