package redisbus

// End to end: several processes (this test binary, re-executed) share one
// SQLite file through idmap, each with its own Redis bus. The parent drives
// them with lines on their stdin; they answer with lines beginning "@@ " on
// their stdout.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// e2eItem is the mapped type the processes share.
type e2eItem struct {
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
}

func (e2eItem) TableName() string { return "items" }

const (
	e2eEnvRole    = "IDMAP_REDISBUS_E2E_ROLE"
	e2eEnvDB      = "IDMAP_REDISBUS_E2E_DB"
	e2eEnvChannel = "IDMAP_REDISBUS_E2E_CHANNEL"
	e2eNever      = 30 * time.Second // "never delivered"
)

func e2eDSN(path string) string {
	return "file:" + path + "?_journal_mode=WAL&_busy_timeout=5000"
}

// A child is one process of the test.
type child struct {
	t      *testing.T
	role   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the "@@ " lines, prefix removed
	stderr *syncBuffer
	done   chan struct{} // closed when stdout is drained
}

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

func startChild(t *testing.T, role, path, channel string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), e2eEnvRole+"="+role, e2eEnvDB+"="+path, e2eEnvChannel+"="+channel)
	c := &child{t: t, role: role, cmd: cmd, lines: make(chan string, 1<<16), stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "@@ "); ok {
				c.lines <- l
			}
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		c.stdin.Close() // the child closes its bus and exits
		waited := make(chan error, 1)
		go func() { <-c.done; waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("child %s: %v", role, err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
			t.Errorf("child %s did not exit", role)
		}
		if t.Failed() {
			t.Logf("child %s stderr:\n%s", role, c.stderr.String())
		}
	})
	return c
}

func (c *child) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.stdin, format+"\n", args...); err != nil {
		c.t.Fatalf("child %s: writing: %v", c.role, err)
	}
}

// expect returns the fields of the next line, which must begin with word.
func (c *child) expect(word string) []string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("child %s exited; stderr:\n%s", c.role, c.stderr.String())
		}
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != word {
			c.t.Fatalf("child %s said %q; want %s", c.role, l, word)
		}
		return f[1:]
	case <-time.After(e2eNever):
		c.t.Fatalf("child %s: no %s within %v; stderr:\n%s", c.role, word, e2eNever, c.stderr.String())
	}
	return nil
}

func atoi64(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// nameIndex is the write that stored name: "k12" → 12; 0 for the others.
func nameIndex(name string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "k"))
	if err != nil || !strings.HasPrefix(name, "k") {
		return 0
	}
	return n
}

func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addr := redisAddr(t)
	path := filepath.Join(t.TempDir(), "shared.db")
	setup, err := sql.Open("sqlite3", e2eDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO items (id, name) VALUES (1, 'start')`); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	channel := testChannel(t)
	a := startChild(t, "A", path, channel) // the writer
	readers := []*child{startChild(t, "B", path, channel), startChild(t, "C", path, channel)}
	for _, c := range append([]*child{a}, readers...) {
		c.expect("ready")
	}

	// Delivery delay: each reader holds the row (loaded through the shared
	// map) when A updates it, and polls until its map lets the new value
	// through.
	const writes = 200
	var delays []time.Duration
	fromMap := 0 // writes a reader saw only once its map let them through
	for i := 1; i <= writes; i++ {
		name := fmt.Sprintf("m%d", i)
		for _, r := range readers {
			r.send("watch 1 %s", name)
			r.expect("watching")
		}
		a.send("set 1 %s", name)
		committed := atoi64(t, a.expect("set")[0])
		for _, r := range readers {
			f := r.expect("seen")
			delays = append(delays, time.Duration(atoi64(t, f[0])-committed))
			if atoi64(t, f[1]) > 0 {
				fromMap++
			}
		}
	}
	t.Logf("delivery delay (commit in A → new value in the reader) over %d writes seen by %d processes: p50 %v, p99 %v, max %v; "+
		"%d of %d served the old value from the map until the message came",
		writes, len(readers), percentile(delays, 0.5), percentile(delays, 0.99), percentile(delays, 1), fromMap, len(delays))
	if fromMap == 0 {
		t.Error("no reader ever held the row in its map: the delays measure nothing")
	}

	// Losses: the readers read in a loop while A writes, and every
	// subscription is killed three times. No reader may return a value
	// older than a write committed before its bus listened again, nor,
	// between a loss and the resumption, older than any committed write.
	for _, r := range readers {
		r.send("read-start 1")
		r.expect("reading")
	}
	commits := []int64{0} // commits[i]: when write "k<i>" had committed (unix ns)
	killer := redis.NewClient(&redis.Options{Addr: addr})
	defer killer.Close()
	const lossWrites = 300
	for i := 1; i <= lossWrites; i++ {
		if i%100 == 50 {
			if err := killer.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Fatalf("CLIENT KILL: %v", err)
			}
		}
		a.send("set 1 k%d", i)
		commits = append(commits, atoi64(t, a.expect("set")[0]))
		time.Sleep(time.Millisecond)
	}
	for _, r := range readers {
		r.send("read-stop")
		checkReads(t, r, commits)
	}

	// And in the end every reader sees the last write.
	last := fmt.Sprintf("k%d", lossWrites)
	for _, r := range readers {
		r.send("await 1 %s", last)
		r.expect("seen")
	}
}

// checkReads reads what reader r recorded and checks it against commits.
func checkReads(t *testing.T, r *child, commits []int64) {
	t.Helper()
	type read struct {
		start int64
		name  string
	}
	type gap struct {
		resumed       bool
		before, after int64 // around idmap's handling of it
	}
	var reads []read
	var gaps []gap
	for {
		f := r.expect("rec")
		if f[0] == "end" {
			break
		}
		switch f[0] {
		case "read":
			reads = append(reads, read{atoi64(t, f[1]), f[2]})
		case "gap":
			gaps = append(gaps, gap{f[1] == "resumed", atoi64(t, f[2]), atoi64(t, f[3])})
		}
	}
	losses, resumptions := 0, 0
	for _, g := range gaps {
		if g.resumed {
			resumptions++
		} else {
			losses++
		}
	}
	if losses == 0 || resumptions <= losses {
		// The first resumption is the initial subscription.
		t.Fatalf("reader %s: %d losses, %d resumptions: the kills were not seen", r.role, losses, resumptions)
	}
	// newestBefore returns the newest write committed before ts.
	newestBefore := func(ts int64) int {
		i, _ := slices.BinarySearch(commits, ts)
		return i - 1
	}
	duringLoss, checked, violations := 0, 0, 0
	for _, rd := range reads {
		got := nameIndex(rd.name)
		if got == 0 {
			continue // before the writes of this phase
		}
		// The state of the bus when the read began.
		var lastResumeBefore int64 = -1 // when the latest resumption before the read began
		inLoss := false
		for _, g := range gaps {
			if g.resumed {
				if g.before <= rd.start {
					inLoss = false // the maps may serve again
				}
				if g.after <= rd.start {
					lastResumeBefore = g.before
				}
			} else if g.after <= rd.start {
				inLoss = true // idmap has paused: every read queries
			}
		}
		want := 0
		if lastResumeBefore >= 0 {
			want = newestBefore(lastResumeBefore)
		}
		if inLoss {
			duringLoss++
			want = max(want, newestBefore(rd.start))
		}
		checked++
		if got < want {
			if violations++; violations > 10 {
				continue
			}
			t.Errorf("reader %s: a read begun at %d returned write %d; write %d had committed at %d (in loss: %v)",
				r.role, rd.start, got, want, commits[want], inLoss)
		}
	}
	t.Logf("reader %s: %d reads checked (%d during a loss), %d losses, %d resumptions, %d stale reads",
		r.role, checked, duringLoss, losses, resumptions, violations)
}

// watchedBus records, around idmap's handling, the gaps of a bus.
type watchedBus struct {
	*Bus
	mu        sync.Mutex
	gaps      []string      // protected by mu: "gap lost|resumed before after"
	listening chan struct{} // closed at the first resumption
	once      sync.Once
}

func (w *watchedBus) Subscribe(h bus.Handler) error {
	inner := h.Gap
	h.Gap = func(g bus.Gap) {
		before := time.Now().UnixNano()
		if inner != nil {
			inner(g)
		}
		after := time.Now().UnixNano()
		kind := "lost"
		if g.Resumed {
			kind = "resumed"
			w.once.Do(func() { close(w.listening) })
		}
		w.mu.Lock()
		w.gaps = append(w.gaps, fmt.Sprintf("gap %s %d %d", kind, before, after))
		w.mu.Unlock()
	}
	return w.Bus.Subscribe(h)
}

func (w *watchedBus) isListening() bool {
	st := w.gaps
	return len(st) > 0 && strings.HasPrefix(st[len(st)-1], "gap resumed")
}

// TestHelperProcess is a child of TestMultiProcess; it does nothing in a
// normal run.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(e2eEnvRole)
	if role == "" {
		return
	}
	if err := runChild(os.Getenv(e2eEnvDB), os.Getenv(e2eEnvChannel)); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runChild(path, channel string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rb, err := New(testOptions(os.Getenv("IDMAP_REDIS_ADDR")), Channel(channel), Heartbeat(200*time.Millisecond), Logger(log))
	if err != nil {
		return err
	}
	w := &watchedBus{Bus: rb, listening: make(chan struct{})}
	db, err := idmap.Open("sqlite3", e2eDSN(path), idmap.Name("shared"), idmap.WithBus(w))
	if err != nil {
		return err
	}
	defer rb.Close()
	defer db.Close()
	ctx := context.Background()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf("@@ "+format+"\n", args...)
	}
	select {
	case <-w.listening:
	case <-time.After(e2eNever):
		return fmt.Errorf("bus not listening within %v", e2eNever)
	}
	say("ready")

	var (
		bg   sync.WaitGroup // the background loop of watch, await or read-start
		quit = make(chan struct{})
		stop chan struct{} // ends read-start's loop
		recs []string      // read-start's records
		keep *e2eItem      // holds the watched row, so the weak map keeps it
	)
	defer func() { // at the end of stdin, or on an error
		close(quit)
		bg.Wait()
	}()
	get := func(id int64) (*e2eItem, error) { return idmap.Get[e2eItem](ctx, db, id) }
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		id := int64(1)
		if len(f) > 1 {
			id, _ = strconv.ParseInt(f[1], 10, 64)
		}
		switch f[0] {
		case "set": // set ID NAME: update, answer the commit time
			if _, err := db.ExecContext(ctx, "UPDATE items SET name = ? WHERE id = ?", f[2], id); err != nil {
				return err
			}
			say("set %d", time.Now().UnixNano())
		case "watch", "await": // watch ID NAME: hold the row, then poll until NAME shows
			bg.Wait()
			want := f[2]
			it, err := get(id)
			if err != nil {
				return err
			}
			keep = it
			if f[0] == "watch" {
				say("watching %s", it.Name)
			}
			bg.Add(1)
			go func() {
				defer bg.Done()
				deadline := time.Now().Add(e2eNever)
				stale := 0 // polls that found the old value fresh in the map
				for time.Now().Before(deadline) {
					select {
					case <-quit:
						return
					default:
					}
					if c := idmap.Cached[e2eItem](ctx, db, id); c == nil || c.Name == want {
						it, err := get(id)
						if err != nil {
							say("error %v", err)
							return
						}
						keep = it
						if it.Name == want {
							say("seen %d %d", time.Now().UnixNano(), stale)
							return
						}
					} else {
						stale++
					}
					time.Sleep(100 * time.Microsecond)
				}
				say("never %s", want)
			}()
		case "read-start": // read-start ID: read in a loop until read-stop
			bg.Wait()
			stop = make(chan struct{})
			recs = recs[:0]
			bg.Add(1)
			go func(stop chan struct{}) {
				defer bg.Done()
				for {
					select {
					case <-stop:
						return
					case <-quit:
						return
					default:
					}
					start := time.Now().UnixNano()
					it, err := get(id)
					if err != nil {
						recs = append(recs, "error "+strings.ReplaceAll(err.Error(), " ", "_"))
					} else {
						recs = append(recs, fmt.Sprintf("read %d %s", start, it.Name))
					}
					time.Sleep(500 * time.Microsecond)
				}
			}(stop)
			say("reading")
		case "read-stop": // read-stop: stop reading once listening, answer the records
			deadline := time.Now().Add(e2eNever)
			for {
				w.mu.Lock()
				ok := w.isListening()
				w.mu.Unlock()
				if ok || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			close(stop)
			bg.Wait()
			for _, r := range recs {
				say("rec %s", r)
			}
			w.mu.Lock()
			for _, g := range w.gaps {
				say("rec %s", g)
			}
			w.mu.Unlock()
			say("rec end")
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
	}
	_ = keep
	return sc.Err()
}
