package pgbus_test

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
)

// TestPostgresLeaseFaults: with the default options (idmap's 500 ms lease,
// pgbus's 5 s heartbeat), a writer A updates a row every millisecond while
// a reader B, whose bus goes through a loopback proxy, reads it through
// its shared map in a loop. Faults hit B's bus: a 2 s silent stall (the
// proxy holds every byte, both ways, without closing anything), a TCP
// reset of its connection, and the termination of its listener
// (pg_terminate_backend). No read of B may return a version later than
// the lease after the commit of a newer one. IDMAP_E2E_ROUNDS sets how
// many rounds of the three faults run (1 by default).
func TestPostgresLeaseFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the multi-process test")
	}
	dsn := pgDSN(t)
	cfg := pgConfig(t)
	c := conn(t)
	table := v0Table(t, c, "pgbus_lease")
	p := newProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	channel := unique("pgbus_lease")
	appB := unique("pgbus_lease_b")
	env := func(app, busDSN string) []string {
		return []string{envTable + "=" + table, envChannel + "=" + channel, envApp + "=" + app, envBusDSN + "=" + busDSN}
	}
	a := startChild(t, "A", env(unique("pgbus_lease_a"), dsn)...)
	// PGBUS_E2E_LEASE=1h (in the test's environment) shows what the
	// default lease prevents: the test then fails.
	b := startChild(t, "B", env(appB, viaProxy(t, dsn, p.addr()))...)
	t.Cleanup(p.resume)

	runLeaseFaults(t, a, b, []leaseFault{
		{"stall 2s", func() { p.stall(); time.Sleep(2 * time.Second); p.resume() }},
		{"reset", p.reset},
		{"listener kill", func() {
			if n := terminate(t, c, appB); n != 1 {
				t.Errorf("%d listeners of B terminated, want 1", n)
			}
		}},
	}, false)
}

// leaseFault is a fault of runLeaseFaults, named in its log.
type leaseFault struct {
	name string
	f    func()
}

// runLeaseFaults runs IDMAP_E2E_ROUNDS rounds (1 by default) of each fault
// with leaseRound and logs each; with wantGap, each round must have made
// B's bus report a gap (the fault reached it).
func runLeaseFaults(t *testing.T, a, b *child, faults []leaseFault, wantGap bool) {
	t.Helper()
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("IDMAP_E2E_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	next := int64(1)
	var expiries, gaps, probes int64 // B's counters so far
	for round := 1; round <= rounds; round++ {
		for _, f := range faults {
			r := leaseRound(t, a, b, &next, f.f)
			r.expiries, expiries = r.expiries-expiries, r.expiries
			r.gaps, gaps = r.gaps-gaps, r.gaps
			r.probes, probes = r.probes-probes, r.probes
			r.log(t, f.name, round)
			if wantGap && r.gaps == 0 {
				t.Errorf("round %d, %s: B's bus reported no gap: the fault did not reach it", round, f.name)
			}
		}
	}
}

// line returns c's next line, whatever its first word.
func (c *child) line() string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("child %s exited; stderr:\n%s", c.name, c.stderr.String())
		}
		return l
	case <-time.After(waitFor):
		c.t.Fatalf("child %s: no line within %v", c.name, waitFor)
		return ""
	}
}

// leaseResult is what one fault round measured.
type leaseResult struct {
	reads, stale, late int
	delays             []time.Duration // commit → first read (begun after it) that returned it or newer
	maxAge             time.Duration   // the oldest stale read: since the newer version committed
	lease              time.Duration
	expiries, gaps     int64
	probes             int64
	elapsed            time.Duration
}

func (r leaseResult) log(t *testing.T, fault string, round int) {
	t.Helper()
	slices.Sort(r.delays)
	pct := func(q float64) time.Duration {
		if len(r.delays) == 0 {
			return -1
		}
		return r.delays[int(q*float64(len(r.delays)-1))]
	}
	t.Logf("round %d, %-13s: %6d reads, %5d stale (oldest %v after the newer commit), %d later than the lease %v; delivery p50 %v p99 %v max %v over %d writes; B's lease expiries %d, gaps %d, probes %.1f/s",
		round, fault, r.reads, r.stale, r.maxAge.Round(time.Microsecond), r.late, r.lease,
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond), len(r.delays), r.expiries, r.gaps, float64(r.probes)/r.elapsed.Seconds())
	if r.late > 0 {
		t.Errorf("round %d, %s: %d reads returned a version later than the lease (%v) after a newer one committed", round, fault, r.late, r.lease)
	}
}

// leaseRound runs one fault while A writes and B reads.
func leaseRound(t *testing.T, a, b *child, next *int64, fault func()) leaseResult {
	t.Helper()
	began := time.Now()
	b.send("readloop 1")
	b.expect("reading")
	const writeFor = 3500 * time.Millisecond
	a.send("wfor 1 %d %d", *next, writeFor.Milliseconds())
	time.Sleep(500 * time.Millisecond)
	fault()
	commits := map[int64]int64{} // write → commit (unix ns)
	for {
		f := strings.Fields(a.line())
		if f[0] == "wdone" {
			break
		}
		f = f[1:]
		n, _ := strconv.ParseInt(f[0], 10, 64)
		ts, _ := strconv.ParseInt(f[1], 10, 64)
		commits[n] = ts
	}
	b.send("readstop")
	var res leaseResult
	res.elapsed = time.Since(began)
	type read struct{ start, v int64 }
	var reads []read
	for {
		f := strings.Fields(b.line())
		if f[0] == "rend" {
			f = f[1:]
			res.expiries, _ = strconv.ParseInt(f[0], 10, 64)
			res.gaps, _ = strconv.ParseInt(f[1], 10, 64)
			res.probes, _ = strconv.ParseInt(f[2], 10, 64)
			l, _ := strconv.ParseInt(f[3], 10, 64)
			res.lease = time.Duration(l)
			break
		}
		s, _ := strconv.ParseInt(f[1], 10, 64)
		v, _ := strconv.ParseInt(f[2], 10, 64)
		reads = append(reads, read{s, v})
	}
	first, last := *next, *next+int64(len(commits))-1
	*next = last + 1
	// cs[i]: commit of write first+i.
	cs := make([]int64, 0, len(commits))
	for n := first; n <= last; n++ {
		cs = append(cs, commits[n])
	}
	res.reads = len(reads)
	unseen := 0 // the first write no read has returned yet
	for _, rd := range reads {
		// The newest write committed before the read began.
		i, _ := slices.BinarySearch(cs, rd.start)
		lit := first + int64(i) - 1
		if rd.v < lit && rd.v >= first-1 {
			res.stale++
			newer := cs[rd.v+1-first] // the commit that superseded the version read
			age := time.Duration(rd.start - newer)
			res.maxAge = max(res.maxAge, age)
			if age > idmap.DefaultLease { // the bound of the default options
				res.late++
			}
		}
		// Delivery: the first read begun after a commit that returns it.
		for unseen < len(cs) && first+int64(unseen) <= rd.v && cs[unseen] < rd.start {
			res.delays = append(res.delays, time.Duration(rd.start-cs[unseen]))
			unseen++
		}
	}
	if res.reads == 0 || len(cs) == 0 {
		t.Fatalf("%d reads, %d writes: nothing measured", res.reads, len(cs))
	}
	if res.lease != idmap.DefaultLease && os.Getenv(envLease) == "" {
		t.Errorf("B's lease is %v, want the default %v", res.lease, idmap.DefaultLease)
	}
	return res
}
