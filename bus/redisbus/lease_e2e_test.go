package redisbus

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
)

// TestMultiProcessLease: with the default options (idmap's 500 ms lease,
// the bus's 3 s heartbeat), a writer A updates a row every millisecond
// while a reader B, whose bus goes through a loopback proxy, reads it
// through its shared map in a loop. Faults hit B's bus: a 2 s silent stall
// (the proxy holds every byte, both ways, without closing anything), a TCP
// reset of its connections, and CLIENT KILL of its pub/sub connection (by
// its client name: only this test's client). No read of B may return a
// version later than the lease after the commit of a newer one, give or
// take the time A's bus takes to publish after the commit (Redis cannot
// publish inside the transaction): the test allows 100 ms for it.
// IDMAP_E2E_ROUNDS sets how many rounds of the three faults run (1 by
// default).
func TestMultiProcessLease(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addr := redisAddr(t)
	path := newSharedDB(t)
	channel := testChannel(t)
	p := newProxy(t, addr)
	nameB := "idmap-lease-b-" + randomID()
	a := startChild(t, "A", path, channel, e2eEnvDefaults+"=idmap-lease-a-"+randomID())
	b := startChild(t, "B", path, channel, e2eEnvRedis+"="+p.addr(), e2eEnvDefaults+"="+nameB)
	t.Cleanup(p.resume)
	a.expect("ready")
	b.expect("ready")

	runLeaseFaults(t, a, b, []leaseFault{
		{"stall 2s", func() { p.pause(); time.Sleep(2 * time.Second); p.resume() }},
		{"reset", p.reset},
		{"pubsub kill", func() {
			if n := killClients(t, addr, nameB); n != 1 {
				t.Errorf("%d pub/sub clients named %s killed, want 1", n, nameB)
			}
		}},
	}, false)
}

// publishSlack is what TestMultiProcessLease allows beyond the lease: the
// time between A's commit and Redis's PUBLISH.
const publishSlack = 100 * time.Millisecond

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
	t.Logf("round %d, %-11s: %6d reads, %5d stale (oldest %v after the newer commit), %d later than the lease %v; delivery p50 %v p99 %v max %v over %d writes; B's lease expiries %d, gaps %d, probes %.1f/s",
		round, fault, r.reads, r.stale, r.maxAge.Round(time.Microsecond), r.late, r.lease,
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond), len(r.delays), r.expiries, r.gaps, float64(r.probes)/r.elapsed.Seconds())
	if r.late > 0 {
		t.Errorf("round %d, %s: %d reads returned a version later than the lease (%v) + %v after a newer one committed", round, fault, r.late, r.lease, publishSlack)
	}
}

// line returns c's next line, whatever its first word.
func (c *child) line() string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("child %s exited; stderr:\n%s", c.role, c.stderr.String())
		}
		return l
	case <-time.After(e2eNever):
		c.t.Fatalf("child %s: no line within %v", c.role, e2eNever)
		return ""
	}
}

// leaseRound runs one fault while A writes (for 3.5 s) and B reads.
func leaseRound(t *testing.T, a, b *child, next *int64, fault func()) leaseResult {
	t.Helper()
	return leaseRoundFor(t, a, b, next, fault, 3500*time.Millisecond)
}

// leaseRoundFor is leaseRound with A writing for writeFor; the fault
// begins 500 ms after the writes.
func leaseRoundFor(t *testing.T, a, b *child, next *int64, fault func(), writeFor time.Duration) leaseResult {
	t.Helper()
	began := time.Now()
	b.send("readloop 1")
	b.expect("reading")
	a.send("wfor k %d %d", *next, writeFor.Milliseconds())
	time.Sleep(500 * time.Millisecond)
	fault()
	commits := map[int64]int64{} // write → commit (unix ns)
	for {
		f := strings.Fields(a.line())
		if f[0] == "wdone" {
			break
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		ts, _ := strconv.ParseInt(f[2], 10, 64)
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
			res.expiries, _ = strconv.ParseInt(f[1], 10, 64)
			res.gaps, _ = strconv.ParseInt(f[2], 10, 64)
			res.probes, _ = strconv.ParseInt(f[3], 10, 64)
			l, _ := strconv.ParseInt(f[4], 10, 64)
			res.lease = time.Duration(l)
			break
		}
		if f[0] == "error" {
			t.Fatalf("reader B: %s", strings.Join(f[1:], " "))
		}
		s, _ := strconv.ParseInt(f[1], 10, 64)
		v, _ := strconv.ParseInt(f[2], 10, 64)
		reads = append(reads, read{s, v})
	}
	first, last := *next, *next+int64(len(commits))-1
	*next = last + 1
	cs := make([]int64, 0, len(commits)) // cs[i]: commit of write first+i
	for n := first; n <= last; n++ {
		cs = append(cs, commits[n])
	}
	res.reads = len(reads)
	unseen := 0 // the first write no read has returned yet
	for _, rd := range reads {
		i, _ := slices.BinarySearch(cs, rd.start)
		lit := first + int64(i) - 1 // the newest write committed before the read began
		if rd.v < lit && rd.v >= first-1 {
			res.stale++
			age := time.Duration(rd.start - cs[rd.v+1-first]) // since the version read was superseded
			res.maxAge = max(res.maxAge, age)
			if age > res.lease+publishSlack {
				res.late++
			}
		}
		for unseen < len(cs) && first+int64(unseen) <= rd.v && cs[unseen] < rd.start {
			res.delays = append(res.delays, time.Duration(rd.start-cs[unseen]))
			unseen++
		}
	}
	if res.reads == 0 || len(cs) == 0 {
		t.Fatalf("%d reads, %d writes: nothing measured", res.reads, len(cs))
	}
	if res.lease != idmap.DefaultLease {
		t.Errorf("B's lease is %v, want the default %v", res.lease, idmap.DefaultLease)
	}
	return res
}
