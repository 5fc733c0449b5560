package pgbus_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus/pgbus"
)

// The end-to-end test runs instances of a service as child processes of
// the test binary (TestHelperProcess), each with its own idmap database on
// a pgbus.Bus, and drives them through lines on their stdin and stdout.

// Environment of a child process.
const (
	envChild   = "PGBUS_E2E_CHILD"   // "1" in a child
	envTable   = "PGBUS_E2E_TABLE"   // the table of e2eItem
	envChannel = "PGBUS_E2E_CHANNEL" // the bus's channel
	envApp     = "PGBUS_E2E_APP"     // the listener's application_name
	envBusDSN  = "PGBUS_E2E_BUS_DSN" // the bus's DSN (maybe through a proxy)
	envLease   = "PGBUS_E2E_LEASE"   // the database's idmap.Lease, when set
	// envRetry, "1" in a child whose server restarts: a write that fails is
	// made again (until it succeeds, within waitFor) and a read that fails
	// is left out of readloop's reads, instead of ending the child.
	envRetry = "PGBUS_E2E_RETRY"
)

// e2eItem is the mapped type of the end-to-end test.
type e2eItem struct {
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
}

// e2eTable is the table of e2eItem, set from the environment in a child.
var e2eTable = "pgbus_e2e"

func (e2eItem) TableName() string { return e2eTable }

// TestHelperProcess is a child process of TestPostgresMultiProcess; it does
// nothing in a normal run. Commands (one a line, on stdin), and replies
// (lines starting with "E2E ", on stdout):
//
//	get ID            → value N         idmap.Get, N from the name "vN"
//	set ID N          → ok NANOS        UPDATE through idmap; when it returned
//	burst ID FROM TO  → committed N …   one UPDATE per N, then done TO
//	watch ID N        → watching, then seen NANOS
//	                                    poll Cached/Get until the value is vN
//	waitgap G         → lost            until the bus reported G gaps
//	waitlisten        → listening       until the bus listens
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		return
	}
	out := bufio.NewWriter(os.Stdout)
	reply := func(format string, args ...any) {
		fmt.Fprintf(out, "E2E "+format+"\n", args...)
		out.Flush()
	}
	fail := func(err error) {
		reply("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	e2eTable = os.Getenv(envTable)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := pgbus.New(ctx, os.Getenv(envBusDSN), pgbus.Channel(os.Getenv(envChannel)),
		pgbus.ApplicationName(os.Getenv(envApp)), pgbus.Logger(logger))
	if err != nil {
		fail(err)
	}
	dbOpts := []idmap.Option{idmap.Name("shared"), idmap.WithBus(b), idmap.Logger(logger)}
	if d, err := time.ParseDuration(os.Getenv(envLease)); err == nil {
		dbOpts = append(dbOpts, idmap.Lease(d)) // to compare with the default
	}
	db, err := idmap.Open("pgx", os.Getenv("IDMAP_PG_DSN"), dbOpts...)
	if err != nil {
		fail(err)
	}
	stats := func() idmap.BusStats {
		s, _ := idmap.StatsOf(db)
		return s.Bus
	}
	waitUntil := func(cond func() bool) {
		for deadline := time.Now().Add(waitFor); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				fail(fmt.Errorf("timed out; bus stats %+v", stats()))
			}
		}
	}
	value := func(p *e2eItem) int {
		n, err := strconv.Atoi(strings.TrimPrefix(p.Name, "v"))
		if err != nil {
			fail(fmt.Errorf("value %q", p.Name))
		}
		return n
	}
	get := func(id int64) int {
		p, err := idmap.Get[e2eItem](ctx, db, id)
		if err != nil {
			fail(err)
		}
		return value(p)
	}
	retry := os.Getenv(envRetry) == "1"
	set := func(id int64, n int) {
		for deadline := time.Now().Add(waitFor); ; time.Sleep(time.Millisecond) {
			_, err := db.ExecContext(ctx, "UPDATE "+pgx.Identifier{e2eTable}.Sanitize()+" SET name = $1 WHERE id = $2", "v"+strconv.Itoa(n), id)
			if err == nil {
				return
			}
			if !retry || time.Now().After(deadline) {
				fail(err)
			}
		}
	}
	waitUntil(func() bool { return stats().Listening })
	reply("ready")

	var (
		readStop, readDone chan struct{}
		reads              [][2]int64 // start (unix ns), value
	)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		arg := func(i int) int64 {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				fail(err)
			}
			return n
		}
		switch f[0] {
		case "get":
			reply("value %d", get(arg(1)))
		case "set":
			set(arg(1), int(arg(2)))
			reply("ok %d", time.Now().UnixNano())
		case "burst":
			for n := arg(2); n <= arg(3); n++ {
				set(arg(1), int(n))
				reply("committed %d", n)
			}
			reply("done %d", arg(3))
		case "watch":
			id, want := arg(1), int(arg(2))
			if p := idmap.Cached[e2eItem](ctx, db, id); p != nil && value(p) >= want {
				fail(fmt.Errorf("watch: %v is already v%d", id, value(p)))
			}
			reply("watching")
			for deadline := time.Now().Add(waitFor); ; {
				if time.Now().After(deadline) {
					fail(fmt.Errorf("watch: v%d never seen", want))
				}
				if p := idmap.Cached[e2eItem](ctx, db, id); p == nil {
					if got := get(id); got == want {
						break
					} else if got > want {
						fail(fmt.Errorf("watch: got %d, want %d", got, want))
					}
				}
				time.Sleep(100 * time.Microsecond)
			}
			reply("seen %d", time.Now().UnixNano())
		case "wfor": // wfor ID FROM MS: write FROM, FROM+1, … for MS ms; "c N NANOS" after each commit
			end := time.Now().Add(time.Duration(arg(3)) * time.Millisecond)
			n := arg(2)
			for ; time.Now().Before(end); n++ {
				set(arg(1), int(n))
				reply("c %d %d", n, time.Now().UnixNano())
				time.Sleep(time.Millisecond)
			}
			reply("wdone %d", n-1)
		case "readloop": // readloop ID: Get in a loop (holding the row) until readstop
			id := arg(1)
			readStop = make(chan struct{})
			readDone = make(chan struct{})
			reads = reads[:0]
			go func(stop, done chan struct{}) {
				defer close(done)
				var keep *e2eItem
				for {
					select {
					case <-stop:
						_ = keep
						return
					default:
					}
					start := time.Now().UnixNano()
					p, err := idmap.Get[e2eItem](ctx, db, id)
					if err != nil && retry {
						time.Sleep(time.Millisecond) // the server restarts: no read
						continue
					}
					if err != nil {
						fail(err)
					}
					keep = p
					reads = append(reads, [2]int64{start, int64(value(p))})
					time.Sleep(200 * time.Microsecond)
				}
			}(readStop, readDone)
			reply("reading")
		case "readstop": // readstop: wait until ready, stop the loop, "r START VALUE" per read, then "rend"
			wctx, cancel := context.WithTimeout(ctx, waitFor)
			if err := idmap.WaitReady(wctx, db); err != nil {
				fail(err)
			}
			cancel()
			close(readStop)
			<-readDone
			for _, r := range reads {
				fmt.Fprintf(out, "E2E r %d %d\n", r[0], r[1])
			}
			st, _ := idmap.StatsOf(db)
			reply("rend %d %d %d %d", st.Bus.LeaseExpiries, st.Bus.Gaps, st.Bus.Probes, st.Bus.Lease)
		case "waitgap":
			gaps := uint64(arg(1))
			waitUntil(func() bool { return stats().Gaps >= gaps })
			reply("lost")
		case "waitlisten":
			waitUntil(func() bool { return stats().Listening })
			reply("listening")
		default:
			fail(fmt.Errorf("unknown command %q", in.Text()))
		}
	}
	_ = db.Close()
	_ = b.Close()
	os.Exit(0)
}

// child is a child process, as the parent sees it.
type child struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // its E2E replies
	stderr *syncBuffer
}

func startChild(t *testing.T, name string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(append(os.Environ(), envChild+"=1"), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), stderr: &syncBuffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if line, ok := strings.CutPrefix(s.Text(), "E2E "); ok {
				c.lines <- line
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			_ = cmd.Process.Kill()
		}
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("child %s: %v", name, err)
			}
		case <-time.After(waitFor):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("child %s did not exit", name)
		}
		if t.Failed() {
			t.Logf("child %s stderr:\n%s", name, c.stderr.String())
		}
	})
	c.expect("ready")
	return c
}

// send writes a command.
func (c *child) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.stdin, format+"\n", args...); err != nil {
		c.t.Fatalf("child %s: %v", c.name, err)
	}
}

// reply returns the next reply, whose first word must be word, without it.
func (c *child) reply(word string) string {
	c.t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("child %s exited; stderr:\n%s", c.name, c.stderr.String())
		}
		got, rest, _ := strings.Cut(line, " ")
		if got != word {
			c.t.Fatalf("child %s replied %q, want %s …", c.name, line, word)
		}
		return rest
	case <-time.After(waitFor):
		c.t.Fatalf("child %s: no %q within %v (never delivered?)", c.name, word, waitFor)
		return ""
	}
}

func (c *child) expect(word string) { c.t.Helper(); c.reply(word) }

func (c *child) int(word string) int64 {
	c.t.Helper()
	s := c.reply(word)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		c.t.Fatalf("child %s: %s %q", c.name, word, s)
	}
	return n
}

// TestPostgresMultiProcess runs three instances: A writes, B and C read
// from their shared maps. It measures how long a write takes to reach the
// readers, then kills B's listener during a burst of writes and checks that
// B never serves a value older than a write that committed before it
// resumed listening.
func TestPostgresMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the multi-process test")
	}
	dsn := pgDSN(t)
	cfg := pgConfig(t)
	c := conn(t)
	table := v0Table(t, c, "pgbus_e2e")

	// B's bus goes through a proxy that can hold its reconnection.
	p := newProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	channel := unique("pgbus_e2e")
	appB := unique("pgbus_e2e_b")
	env := func(app, busDSN string) []string {
		return []string{envTable + "=" + table, envChannel + "=" + channel, envApp + "=" + app, envBusDSN + "=" + busDSN}
	}
	var a, b, cc *child
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a = startChild(t, "A", env(unique("pgbus_e2e_a"), dsn)...) }()
	go func() { defer wg.Done(); b = startChild(t, "B", env(appB, viaProxy(t, dsn, p.addr()))...) }()
	go func() { defer wg.Done(); cc = startChild(t, "C", env(unique("pgbus_e2e_c"), dsn)...) }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	readers := []*child{b, cc}

	// Delivery delay: A's UPDATE returned → the reader's Get returns it.
	for _, r := range readers {
		r.send("get 1")
		if v := r.int("value"); v != 0 {
			t.Fatalf("reader %s: value %d, want 0", r.name, v)
		}
	}
	const writes = 200
	var delays []time.Duration
	for n := 1; n <= writes; n++ {
		for _, r := range readers {
			r.send("watch 1 %d", n)
		}
		for _, r := range readers {
			r.expect("watching")
		}
		a.send("set 1 %d", n)
		committed := a.int("ok")
		for _, r := range readers {
			delays = append(delays, time.Duration(r.int("seen")-committed))
		}
	}
	slices.Sort(delays)
	pct := func(q float64) time.Duration { return delays[int(q*float64(len(delays)-1))] }
	t.Logf("delivery delay over %d writes × %d readers: p50 %v, p90 %v, p99 %v, max %v",
		writes, len(readers), pct(0.50), pct(0.90), pct(0.99), delays[len(delays)-1])

	// Kill B's listener during a burst of writes, while its reconnection is
	// held: B must query (never serve from its map) during the gap, and
	// serve the last write once it listens again.
	const from, to = writes + 1, writes + 80
	p.hold()
	a.send("burst 1 %d %d", from, to)
	last := int64(writes)
	for last < from+20 {
		last = a.int("committed")
	}
	if n := terminate(t, c, appB); n != 1 {
		t.Fatalf("%d listeners of B terminated, want 1", n)
	}
	b.send("waitgap 1")
	b.expect("lost")
	checked := 0
	for done := false; !done; {
		// Every write committed before B's Get began is seen.
		b.send("get 1")
		got := b.int("value")
		// Only what A reported before the Get was sent is known committed.
		if got < last {
			t.Fatalf("during the gap, B's Get returned v%d after v%d had committed", got, last)
		}
		checked++
	drain:
		for {
			select {
			case line := <-a.lines:
				word, rest, _ := strings.Cut(line, " ")
				n, err := strconv.ParseInt(rest, 10, 64)
				if err != nil || (word != "committed" && word != "done") {
					t.Fatalf("child A replied %q", line)
				}
				last = max(last, n)
				done = word == "done"
			default:
				break drain
			}
		}
		if !done && checked > 1000 {
			t.Fatal("the burst does not end")
		}
	}
	if last != to {
		t.Fatalf("burst ended at %d, want %d", last, to)
	}
	// Every write committed; now B listens again.
	p.release()
	b.send("waitlisten")
	b.expect("listening")
	b.send("get 1")
	if got := b.int("value"); got != to {
		t.Fatalf("B resumed and returned v%d, want v%d", got, to)
	}
	t.Logf("%d Gets of B during the gap checked fresh", checked)
	// And deliveries work again, to B and C.
	for _, r := range readers {
		r.send("get 1")
		r.expect("value")
	}
	for _, r := range readers {
		r.send("watch 1 %d", to+1)
	}
	for _, r := range readers {
		r.expect("watching")
	}
	a.send("set 1 %d", to+1)
	a.expect("ok")
	for _, r := range readers {
		r.expect("seen")
	}
}

// viaProxy returns dsn with its host and port replaced by addr.
func viaProxy(t *testing.T, dsn, addr string) string {
	t.Helper()
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Host = addr
		return u.String()
	}
	host, port, _ := net.SplitHostPort(addr)
	return dsn + " host=" + host + " port=" + port
}
