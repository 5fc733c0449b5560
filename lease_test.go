package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/signals"
)

// openLeased opens a SQLite file through idmap on b, and the same file
// without idmap (for writes that another instance makes: idmap does not
// see them, only their messages). It seeds n users.
func openLeased(t *testing.T, b bus.Bus, n int, opts ...idmap.Option) (db, other *sql.DB, name string) {
	t.Helper()
	name = fmt.Sprintf("lease-%s-%d", t.Name(), dbSeq.Add(1))
	dsn := "file:" + filepath.Join(t.TempDir(), "lease.db") + "?_journal_mode=WAL&_busy_timeout=10000"
	other, err := sql.Open("sqlite3", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	seedUsers(t, other, n)
	db, err = idmap.Open("sqlite3", dsn, append([]idmap.Option{idmap.Name(name), idmap.WithBus(b)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db, other, name
}

// events records the signals.Bus events of one database.
type events struct {
	mu    sync.Mutex
	kinds []signals.BusEventKind // protected by mu
	ch    chan signals.BusEventKind
}

func watchEvents(t *testing.T, name string) *events {
	e := &events{ch: make(chan signals.BusEventKind, 64)}
	t.Cleanup(signals.Bus.Connect(func(ev signals.BusEvent) {
		if ev.DB != name {
			return
		}
		e.mu.Lock()
		e.kinds = append(e.kinds, ev.Kind)
		e.mu.Unlock()
		select {
		case e.ch <- ev.Kind:
		default:
		}
	}))
	return e
}

// await waits for an event of kind.
func (e *events) await(t *testing.T, kind signals.BusEventKind) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case k := <-e.ch:
			if k == kind {
				return
			}
		case <-timeout:
			t.Fatalf("no %v event within 20s", kind)
		}
	}
}

func (e *events) all() []signals.BusEventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.kinds)
}

func waitReady(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, idmap.WaitReady(ctx, db))
}

// TestLeaseBoundsStaleness: another instance writes a row while the bus
// stalls (its message is held, nothing reports a loss). Once the lease has
// run out, neither the shared map nor a scope that loaded the row while
// the lease was valid serves the old row; when the stall ends, the held
// message and the next proof come through, and the maps serve again.
// Without the lease, both served the old row for as long as the stall
// lasted.
func TestLeaseBoundsStaleness(t *testing.T) {
	l := bus.NewLoopback()
	defer l.Close()
	p := l.Proving()
	const lease = 100 * time.Millisecond
	db, other, name := openLeased(t, p, 2, idmap.Lease(lease))
	ev := watchEvents(t, name)
	waitReady(t, db)
	ctx := context.Background()
	sctx := idmap.NewContext(ctx)
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	defer runtime.KeepAlive(u) // the shared map holds its objects weakly
	s, err := idmap.Get[User](sctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "user1", s.Name)

	l.Stall()
	_, err = other.Exec("UPDATE users SET name = 'renamed' WHERE id = 1")
	require.NoError(t, err)
	committed := time.Now()
	require.NoError(t, p.Publish(ctx, []bus.Message{{Origin: "another", Seq: 1, DB: name, Table: "users", Keys: []any{int64(1)}, Columns: []string{"id"}}}))

	ev.await(t, signals.LeaseExpired)
	require.GreaterOrEqual(t, time.Since(committed), time.Duration(0))
	require.False(t, idmap.Ready(db))
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "the shared map serves nothing once the lease ran out")
	require.Nil(t, idmap.Cached[User](sctx, db, 1), "nor does a scope, for a row it loaded while the lease was valid")
	got, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "renamed", got.Name)
	got, err = idmap.Get[User](sctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "renamed", got.Name)
	require.Same(t, s, got, "the scope refreshes its object in place")

	l.Unstall()
	ev.await(t, signals.LeaseRenewed)
	waitReady(t, db)
	u, err = idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "renamed", u.Name)
	require.NotNil(t, idmap.Cached[User](ctx, db, 1), "serving again once delivery is proven")

	st, _ := idmap.StatsOf(db)
	require.True(t, st.Bus.Ready)
	require.GreaterOrEqual(t, st.Bus.LeaseExpiries, uint64(1))
	require.Equal(t, st.Bus.LeaseExpiries, st.Bus.GapsByCause["lease expired"])
	require.Equal(t, lease, st.Bus.Lease)
	require.GreaterOrEqual(t, st.Bus.SinceProof, time.Duration(0))
	require.Greater(t, st.Bus.Probes, uint64(1))
	require.Equal(t, uint64(1), st.Bus.Received)
	require.Equal(t, uint64(1), st.Bus.ReceivedKeys)
}

// manualProver is a Prover whose probes the test answers, or holds.
type manualProver struct {
	mu     sync.Mutex
	h      bus.Handler
	tokens chan uint64
	hang   atomic.Bool // Probe blocks until its context is done
}

func (m *manualProver) Publish(context.Context, []bus.Message) error { return nil }
func (m *manualProver) Subscribe(h bus.Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h = h
	return nil
}
func (m *manualProver) Probe(ctx context.Context, token uint64) error {
	select {
	case m.tokens <- token:
	default:
	}
	if m.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}
func (m *manualProver) handler() bus.Handler {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.h
}

// TestLeaseCheckedAtServeTime: the lease runs out at its deadline, while
// the bus's probes hang (a publishing connection that stalls): a lookup
// compares the clock with the deadline, and a renewal expires what was
// loaded before it.
func TestLeaseCheckedAtServeTime(t *testing.T) {
	m := &manualProver{tokens: make(chan uint64, 1)}
	const lease = 150 * time.Millisecond
	db, _, _ := openLeased(t, m, 1, idmap.Lease(lease))
	ctx := context.Background()
	_, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "nothing is served before the bus listens")

	// The resumption proves delivery as of its flush; then no probe comes
	// back.
	m.hang.Store(true)
	answered := time.Now()
	m.handler().Gap(bus.Gap{Resumed: true})
	require.True(t, idmap.Ready(db))
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	defer runtime.KeepAlive(u)
	if time.Since(answered) < lease/2 { // else the machine was too slow to tell
		require.NotNil(t, idmap.Cached[User](ctx, db, 1))
	}
	time.Sleep(time.Until(answered.Add(lease + 10*time.Millisecond)))
	require.False(t, idmap.Ready(db))
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "past the deadline nothing is served")

	// A proof renews the lease; what was loaded before is reloaded.
	m.hang.Store(false)
	for range 100 { // the probe in flight hung until its context ended: it may be too old
		m.handler().Probe(<-m.tokens)
		if idmap.Ready(db) {
			break
		}
	}
	require.True(t, idmap.Ready(db))
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "a renewal expires what was loaded before it")
}

// TestLeaseGapEvents: a loss and a resumption are told apart, with the
// database's name, and WaitReady waits for the resumption and its proof.
func TestLeaseGapEvents(t *testing.T) {
	l := bus.NewLoopback()
	defer l.Close()
	p := l.Proving()
	db, _, name := openLeased(t, p, 1)
	ev := watchEvents(t, name)
	waitReady(t, db)

	l.Cut(errors.New("listener killed"))
	ev.await(t, signals.BusLost)
	require.False(t, idmap.Ready(db))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := idmap.WaitReady(ctx, db)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, fmt.Sprintf("idmap: WaitReady: database %q is not ready: its bus does not listen", name))

	l.Restore()
	waitReady(t, db)
	ev.await(t, signals.LeaseRenewed)
	want := []signals.BusEventKind{signals.BusLost, signals.BusListening, signals.LeaseRenewed}
	// The events of the first resumption are sent after WaitReady returns
	// and may still come in after it: the loss is the first event looked
	// at. A lease expiry may come between, on a slow machine.
	all := ev.all()
	got := slices.DeleteFunc(all[slices.Index(all, signals.BusLost):], func(k signals.BusEventKind) bool { return k == signals.LeaseExpired })
	got = slices.Compact(got)
	require.Equal(t, want, got)
	st, _ := idmap.StatsOf(db)
	require.Equal(t, uint64(1), st.Bus.GapsByCause["lost"])
	require.Zero(t, st.Bus.GapsByCause["closed"])

	require.Equal(t, "lost", signals.BusLost.String())
	require.Equal(t, "lease expired", signals.LeaseExpired.String())
	require.False(t, idmap.Ready(nil))
}

// TestLeaseWithoutProver: a bus that proves nothing holds no lease.
func TestLeaseWithoutProver(t *testing.T) {
	l := bus.NewLoopback()
	defer l.Close()
	db, _, _ := openLeased(t, l, 1)
	waitReady(t, db)
	st, _ := idmap.StatsOf(db)
	require.Zero(t, st.Bus.Lease)
	require.Equal(t, time.Duration(-1), st.Bus.SinceProof)
	_, err := idmap.Open("sqlite3", "file:x.db", idmap.Lease(0))
	require.ErrorContains(t, err, "idmap: Lease: 0s is not a positive duration")
}

// BenchmarkGetLease: a Get hit in the shared map, without a bus and with
// a bus that holds a lease (a clock read more).
func BenchmarkGetLease(b *testing.B) {
	run := func(b *testing.B, opts ...idmap.Option) {
		db, _ := openCounted(b, opts...)
		seedUsers(b, db, 1)
		ctx := context.Background()
		ready, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := idmap.WaitReady(ready, db); err != nil {
			b.Fatal(err)
		}
		u, _ := idmap.Get[User](ctx, db, 1)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := idmap.Get[User](ctx, db, 1); err != nil {
				b.Fatal(err)
			}
		}
		runtime.KeepAlive(u)
	}
	b.Run("noBus", func(b *testing.B) { run(b, idmap.Name(fmt.Sprintf("bench-nobus-%d", dbSeq.Add(1)))) })
	b.Run("busNoLease", func(b *testing.B) {
		l := bus.NewLoopback()
		defer l.Close()
		run(b, idmap.Name(fmt.Sprintf("bench-bus-%d", dbSeq.Add(1))), idmap.WithBus(l))
	})
	b.Run("lease", func(b *testing.B) {
		l := bus.NewLoopback()
		defer l.Close()
		// A long lease: the benchmark measures the check, not expiries.
		run(b, idmap.Name(fmt.Sprintf("bench-lease-%d", dbSeq.Add(1))), idmap.WithBus(l.Proving()), idmap.Lease(time.Hour))
	})
}
