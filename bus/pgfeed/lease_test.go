package pgfeed_test

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgfeed"
)

// TestFeedProbe: a probe comes back through the feed to every subscriber,
// behind the transactions committed before it; another feed's probes do
// not; a closed feed refuses to probe.
func TestFeedProbe(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)`, `INSERT INTO items VALUES (1, 'a')`)
	f := e.feed("feed_probe", []string{"items"})
	type event struct {
		msg   *bus.Message
		probe uint64
	}
	events := make(chan event, 64)
	resumed := make(chan struct{}, 4)
	h := bus.Handler{
		Message: func(m bus.Message) { events <- event{msg: &m} },
		Gap: func(g bus.Gap) {
			if g.Resumed {
				resumed <- struct{}{}
			}
		},
		Probe: func(token uint64) { events <- event{probe: token} },
	}
	if err := f.Subscribe(h); err != nil {
		t.Fatal(err)
	}
	next := func() event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(waitFor):
			t.Fatal("nothing delivered")
			return event{}
		}
	}
	select {
	case <-resumed:
	case <-time.After(waitFor):
		t.Fatal("the feed does not stream")
	}
	ctx := context.Background()
	e.exec(`UPDATE items SET name = 'b' WHERE id = 1`)
	if err := f.Probe(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.msg == nil || ev.msg.Table != "items" {
		t.Fatalf("first delivery %+v; want the update of items, before the probe", ev)
	}
	if ev := next(); ev.msg != nil || ev.probe != 7 {
		t.Fatalf("second delivery %+v; want probe 7", ev)
	}

	// Another feed on the same database decodes the same messages: it
	// does not take this feed's probes, nor this one its.
	f2 := e.feed("feed_probe", []string{"items"})
	probes2 := make(chan uint64, 16)
	resumed2 := make(chan struct{}, 4)
	if err := f2.Subscribe(bus.Handler{
		Message: func(bus.Message) {},
		Gap: func(g bus.Gap) {
			if g.Resumed {
				resumed2 <- struct{}{}
			}
		},
		Probe: func(token uint64) { probes2 <- token },
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed2:
	case <-time.After(waitFor):
		t.Fatal("the second feed does not stream")
	}
	if err := f2.Probe(ctx, 8); err != nil {
		t.Fatal(err)
	}
	if err := f.Probe(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.probe != 9 {
		t.Fatalf("delivery %+v; want probe 9 (probe 8 is the other feed's)", ev)
	}
	select {
	case tok := <-probes2:
		if tok != 8 {
			t.Fatalf("the second feed got probe %d; want 8", tok)
		}
	case <-time.After(waitFor):
		t.Fatal("the second feed's probe never came back")
	}
	select {
	case tok := <-probes2:
		t.Fatalf("the second feed got probe %d of the first", tok)
	default:
	}

	// The round trip of a probe, on an otherwise idle feed.
	var rtts []time.Duration
	for i := uint64(100); i < 150; i++ {
		start := time.Now()
		if err := f.Probe(ctx, i); err != nil {
			t.Fatal(err)
		}
		if ev := next(); ev.probe != i {
			t.Fatalf("delivery %+v; want probe %d", ev, i)
		}
		rtts = append(rtts, time.Since(start))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	t.Logf("probe round trip (Probe called → Handler.Probe), %d probes: p50 %v, p90 %v, max %v",
		len(rtts), rtts[len(rtts)/2].Round(time.Microsecond), rtts[len(rtts)*9/10].Round(time.Microsecond), rtts[len(rtts)-1].Round(time.Microsecond))

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Probe(ctx, 10); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Probe on a closed feed: %v; want bus.ErrClosed", err)
	}
}

// TestFeedProbeAndMarkApart: a probe is not taken for a read-your-writes
// mark (bus.Syncer), nor a mark for a probe, whatever they carry.
func TestFeedProbeAndMarkApart(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)`)
	f := e.feed("feed_apart", []string{"items"})
	probes := subscribeProbes(t, f)
	ctx := context.Background()
	_, args, wait := f.SyncStatement()
	mark := args[0].(string)
	// A probe-prefixed message that carries the mark, then a mark-prefixed
	// message that carries a token, each both ways (in a transaction and
	// not), then a real probe.
	for _, transactional := range []bool{true, false} {
		e.exec(`SELECT pg_logical_emit_message(` + strconv.FormatBool(transactional) + `, '` + pgfeed.ProbePrefix(f) + `', '` + mark + `')`)
		e.exec(`SELECT pg_logical_emit_message(` + strconv.FormatBool(transactional) + `, '` + pgfeed.MarkPrefix + `', '12345')`)
	}
	if err := f.Probe(ctx, 777); err != nil {
		t.Fatal(err)
	}
	select {
	case tok := <-probes:
		if tok != 777 {
			t.Fatalf("probe %d came back; want 777 (12345 was a mark's content)", tok)
		}
	case <-time.After(waitFor):
		t.Fatal("the probe never came back")
	}
	// Everything above was delivered before the probe: had the mark been
	// taken from a probe, the wait would be over already.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := wait(wctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a mark never emitted = %v; want the deadline (a probe was taken for the mark)", err)
	}
	// The real mark (a new one: the wait above gave up its own).
	q, args, wait := f.SyncStatement()
	if _, err := e.plain.ExecContext(ctx, q, args...); err != nil {
		t.Fatal(err)
	}
	if err := wait(ctx); err != nil {
		t.Fatalf("wait for the mark: %v", err)
	}
	select {
	case tok := <-probes:
		t.Fatalf("probe %d came back from a mark", tok)
	default:
	}
}

// TestFeedLease: with the default lease, a feed whose reader stalls
// silently (nothing fails: the stream just stops; the probes still commit)
// makes the database stop serving from its maps within the lease. A writer
// that idmap does not see (a plain *sql.DB) updates a row all along; no
// read through idmap returns a version older than one committed more than
// the lease before the read began. Without the feed's probes (the same
// feed, its Probe hidden) the same run serves the old version for the
// whole stall. Once the reader resumes, probes come back and the database
// is Ready again.
func TestFeedLease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 2 s stalls")
	}
	t.Run("prover", func(t *testing.T) {
		r := leaseRun(t, true)
		t.Logf("%d reads, %d stale, %d later than the lease %v after a newer commit (oldest stale read %v after it); %d lease expiries; %d probes; ready again %v after the stall",
			r.reads, r.stale, r.late, idmap.DefaultLease, r.maxAge.Round(time.Millisecond), r.expiries, r.probes, r.readyAfter.Round(time.Millisecond))
		if r.late > 0 {
			t.Fatalf("%d reads returned a version older than one committed more than the lease before (oldest %v)", r.late, r.maxAge)
		}
		if r.expiries == 0 {
			t.Fatal("no lease expiry during a 2 s stall")
		}
	})
	t.Run("without the prover", func(t *testing.T) {
		// The control: the test sees what the lease prevents.
		r := leaseRun(t, false)
		t.Logf("%d reads, %d stale, %d later than the lease %v after a newer commit (oldest stale read %v after it)",
			r.reads, r.stale, r.late, idmap.DefaultLease, r.maxAge.Round(time.Millisecond))
		if r.late == 0 {
			t.Fatal("no read later than the lease after a newer commit without the prover: the test shows nothing")
		}
	})
}

type leaseResult struct {
	reads, stale, late int
	maxAge             time.Duration
	expiries, probes   uint64
	readyAfter         time.Duration
}

// noProver hides a feed's Probe (and its Syncer): a bus.Bus only.
type noProver struct{ bus.Bus }

func leaseRun(t *testing.T, prover bool) leaseResult {
	e := newEnv(t)
	e.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, parent_id bigint)`, `INSERT INTO items VALUES (1, '0', NULL)`)
	name := "feed_lease_" + strconv.FormatBool(prover)
	f := e.feed(name, []string{"items"})
	var src bus.Bus = f
	if !prover {
		src = noProver{f}
	}
	db := e.open(name, idmap.WithSource(src))
	ctx := context.Background()
	rctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := idmap.WaitReady(rctx, db); err != nil {
		t.Fatal(err)
	}
	lease := idmap.DefaultLease

	// commits[v] is when the writer's Exec of version v returned: the
	// commit happened before.
	var mu sync.Mutex
	commits := []time.Time{time.Now()}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := 1; !stop.Load(); v++ {
			if _, err := e.plain.ExecContext(ctx, `UPDATE items SET name = $1 WHERE id = 1`, strconv.Itoa(v)); err != nil {
				writeErr = err
				return
			}
			mu.Lock()
			commits = append(commits, time.Now())
			mu.Unlock()
			time.Sleep(time.Millisecond) // pace: a write every 1–2 ms
		}
	}()
	var r leaseResult
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			start := time.Now()
			it, err := idmap.Get[item](ctx, db, int64(1))
			if err != nil {
				readErr = err
				return
			}
			v, _ := strconv.Atoi(it.Name)
			mu.Lock()
			// The newest version committed more than the lease before
			// the read began.
			n := sort.Search(len(commits), func(i int) bool { return !commits[i].Before(start.Add(-lease)) })
			var newer time.Time
			if v+1 < len(commits) {
				newer = commits[v+1]
			}
			mu.Unlock()
			r.reads++
			if !newer.IsZero() && newer.Before(start) {
				r.stale++
				r.maxAge = max(r.maxAge, start.Sub(newer))
			}
			if n-1 > v {
				r.late++
			}
			time.Sleep(100 * time.Microsecond) // pace the reader
		}
	}()
	time.Sleep(300 * time.Millisecond)
	resume, ok := pgfeed.StallReader(f, waitFor)
	if !ok {
		resume()
		stop.Store(true)
		wg.Wait()
		t.Fatal("the stream reader did not stall")
	}
	time.Sleep(2 * time.Second)
	resume()
	resumed := time.Now()
	if prover {
		if err := idmap.WaitReady(rctx, db); err != nil {
			t.Error(err)
		}
		r.readyAfter = time.Since(resumed)
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if writeErr != nil || readErr != nil {
		t.Fatalf("writer: %v; reader: %v", writeErr, readErr)
	}
	s, _ := idmap.StatsOf(db)
	r.expiries, r.probes = s.Bus.LeaseExpiries, s.Bus.Probes
	if prover {
		if !idmap.Ready(db) {
			t.Error("not Ready after the stall")
		}
		if s.Bus.Lease != lease || s.Bus.SinceProof < 0 || s.Bus.Probes == 0 {
			t.Errorf("Stats.Bus: lease %v, since proof %v, probes %d; want the default lease and proofs", s.Bus.Lease, s.Bus.SinceProof, s.Bus.Probes)
		}
	}
	return r
}

// TestFeedProbeReconnects: the probes' connection, once lost, is opened
// again by the next probe.
func TestFeedProbeReconnects(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)`)
	app := unique("probe_app")
	f := e.feed("feed_probe_reconnect", []string{"items"}, pgfeed.ApplicationName(app))
	probes := subscribeProbes(t, f)
	ctx := context.Background()
	want := func(tok uint64) {
		t.Helper()
		select {
		case got := <-probes:
			if got != tok {
				t.Fatalf("probe %d came back; want %d", got, tok)
			}
		case <-time.After(waitFor):
			t.Fatalf("probe %d never came back", tok)
		}
	}
	if err := f.Probe(ctx, 1); err != nil {
		t.Fatal(err)
	}
	want(1)
	// Terminate the probes' connection (not the walsender, nor the
	// connection that confirms commits, whose last query is a snapshot).
	var n int
	if err := e.plain.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend' AND query LIKE '%pg_logical_emit_message%'`, app).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the probes' connection: %d, %v", n, err)
	}
	// The next probe may find the connection dead (and fail); the one
	// after it connects again.
	var err error
	tok := uint64(2)
	for ; tok < 4; tok++ {
		if err = f.Probe(ctx, tok); err == nil {
			break
		}
		t.Logf("probe %d after the kill: %v", tok, err)
	}
	if err != nil {
		t.Fatalf("no probe succeeds after the probes' connection was lost: %v", err)
	}
	want(tok)
}
