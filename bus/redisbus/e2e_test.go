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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// e2eEnvDefaults, when set, makes the child use the default options,
	// with this client name.
	e2eEnvDefaults = "IDMAP_REDISBUS_E2E_DEFAULTS"
	// e2eEnvClientName names the child's subscription connection.
	e2eEnvClientName = "IDMAP_REDISBUS_E2E_CLIENT"
	// e2eEnvRedis is the child's Redis address, when not IDMAP_REDIS_ADDR.
	e2eEnvRedis = "IDMAP_REDISBUS_E2E_REDIS"
	// e2eEnvSubRedis, with e2eEnvDefaults, is where the child subscribes
	// (SubscribeOptions), when not where it publishes.
	e2eEnvSubRedis = "IDMAP_REDISBUS_E2E_SUB_REDIS"
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

// startChild starts a child process of role on the shared database file;
// env adds "KEY=value" variables (e2eEnvRedis, say) to its environment.
func startChild(t *testing.T, role, path, channel string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), e2eEnvRole+"="+role, e2eEnvDB+"="+path, e2eEnvChannel+"="+channel)
	cmd.Env = append(cmd.Env, env...)
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

// newSharedDB creates the database file the processes share: table items,
// with row 1 named "start".
func newSharedDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shared.db")
	setup, err := sql.Open("sqlite3", e2eDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if _, err := setup.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO items (id, name) VALUES (1, 'start')`); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addr := redisAddr(t)
	path := newSharedDB(t)
	channel := testChannel(t)
	a := startChild(t, "A", path, channel) // the writer
	names := []string{"idmap-e2e-b-" + randomID(), "idmap-e2e-c-" + randomID()}
	readers := []*child{
		startChild(t, "B", path, channel, e2eEnvClientName+"="+names[0]),
		startChild(t, "C", path, channel, e2eEnvClientName+"="+names[1]),
	}
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
	const lossWrites = 300
	for i := 1; i <= lossWrites; i++ {
		if i%100 == 50 {
			for _, name := range names { // only this test's clients: the server is shared
				killClients(t, addr, name)
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

// TestMultiProcessStall: the network between one reader and Redis stops
// delivering during a burst of writes (a stalled connection, not a closed
// one: a loopback proxy holds what it reads, both ways), for longer than
// the reader's heartbeat (200ms), then delivers again. The reader's bus
// must report the loss, idmap serve nothing stale from then on, and the
// reader catch up once its bus listens again.
//
// A read begun after the stall began but before the heartbeat noticed it
// may return a superseded value: the messages are held in the proxy, and
// nothing tells the reader yet (the bus's delivery window, here at most
// two heartbeat intervals). The test counts these; it fails on a read older
// than what the reader's bus had told it (a message applied, a loss, a
// resumption) when the read began.
func TestMultiProcessStall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addr := redisAddr(t)
	path := newSharedDB(t)
	channel := testChannel(t)
	// The proxy closes after the children exit (cleanups run last first),
	// and resumes before they are told to, should the test end while paused.
	p := newProxy(t, addr)
	a := startChild(t, "A", path, channel)                           // the writer, on Redis directly
	b := startChild(t, "B", path, channel, e2eEnvRedis+"="+p.addr()) // the reader, through the proxy
	t.Cleanup(p.resume)
	a.expect("ready")
	b.expect("ready")

	stats := func() (gaps int64, listening bool) {
		t.Helper()
		b.send("stats")
		f := b.expect("stats")
		return atoi64(t, f[0]), f[1] == "true"
	}
	gaps0, listening := stats()
	if !listening {
		t.Fatal("reader B: Stats.Bus.Listening is false once its bus listens")
	}

	b.send("read-start 1")
	b.expect("reading")
	commits := []int64{0} // commits[i]: when write "k<i>" had committed (unix ns); 0: the row as created
	seqs := []uint64{0}   // seqs[i]: the sequence number of the message of write i
	write := func() {
		t.Helper()
		a.send("set 1 k%d", len(commits))
		f := a.expect("set")
		seq := uint64(atoi64(t, f[1]))
		if seq <= seqs[len(seqs)-1] {
			t.Fatalf("writer A: write %d published message %d, after message %d", len(commits), seq, seqs[len(seqs)-1])
		}
		commits = append(commits, atoi64(t, f[0]))
		seqs = append(seqs, seq)
		time.Sleep(time.Millisecond)
	}
	// Before the stall, for a few heartbeat intervals and a random part of
	// one: the stall begins anywhere in the heartbeat's cycle (which began
	// when B subscribed, just before it was ready), and the time to detect
	// it varies between one interval and two.
	for warm := time.Now().Add(600*time.Millisecond + rand.N(200*time.Millisecond)); time.Now().Before(warm); {
		write()
	}

	// The stall. A goes on writing; B's bus hears nothing, not even the
	// PONGs of its heartbeat.
	var st stallTimes
	p.pause()
	st.paused = time.Now().UnixNano()
	firstInStall := len(commits)
	for {
		write()
		if _, l := stats(); !l {
			break
		}
		if time.Since(time.Unix(0, st.paused)) > e2eNever {
			t.Fatalf("reader B: Stats.Bus.Listening still true %v after the proxy stalled", e2eNever)
		}
	}
	st.seenLost = time.Now().UnixNano()
	// It lasts a second more: B resubscribes meanwhile, but no
	// confirmation can come through, so it must not listen.
	for hold := time.Now().Add(time.Second); time.Now().Before(hold); {
		write()
		if _, l := stats(); l {
			t.Fatal("reader B: Stats.Bus.Listening true again while the proxy forwards nothing")
		}
	}
	st.resuming = time.Now().UnixNano()
	p.resume()
	inStall := len(commits) - firstInStall
	for {
		write()
		if _, l := stats(); l {
			break
		}
		if time.Since(time.Unix(0, st.resuming)) > e2eNever {
			t.Fatalf("reader B: Stats.Bus.Listening still false %v after the proxy resumed", e2eNever)
		}
	}
	st.seenListening = time.Now().UnixNano()
	for range 100 {
		write()
	}
	if gaps1, _ := stats(); gaps1 <= gaps0 {
		t.Errorf("reader B: Stats.Bus.Gaps %d after the stall, %d before; want more", gaps1, gaps0)
	}

	b.send("read-stop")
	checkStallReads(t, b, commits, seqs, st)

	// Once listening again, B sees the last write.
	b.send("await 1 k%d", len(commits)-1)
	b.expect("seen")
	t.Logf("stall: %d writes by A, %d of them while the proxy held everything, for %v (B's heartbeat 200ms); "+
		"B's Stats.Bus.Listening seen false %v after the stall began, true again %v after it ended",
		len(commits)-1, inStall, time.Duration(st.resuming-st.paused).Round(time.Millisecond),
		time.Duration(st.seenLost-st.paused).Round(time.Millisecond),
		time.Duration(st.seenListening-st.resuming).Round(time.Millisecond))
}

// stallTimes are the moments of TestMultiProcessStall, in the parent (unix
// ns).
type stallTimes struct {
	paused        int64 // the proxy holds everything from here
	seenLost      int64 // the reader's Stats said it no longer listened
	resuming      int64 // just before the proxy forwards again
	seenListening int64 // the reader's Stats said it listened again
}

// checkStallReads reads what reader r recorded during TestMultiProcessStall
// and checks it. Every read must return at least the newest write that the
// reader knew of when it began: by gapFloor, or by a message of the write
// that idmap had applied. Reads older than the newest write committed
// before they began are counted, by window: before the stall, after the
// stall began but before the bus reported it (the messages are held in the
// proxy), during the loss (none may be), after the resumption.
func checkStallReads(t *testing.T, r *child, commits []int64, seqs []uint64, st stallTimes) {
	t.Helper()
	rec := readRecords(t, r)
	for i, e := range rec.errors {
		if i < 10 {
			t.Errorf("reader %s: Get failed: %s", r.role, e)
		}
	}

	// The loss that the stall caused, and the resumption after it.
	var loss, resumption *gapRec
	for i := range rec.gaps {
		g := &rec.gaps[i]
		switch {
		case loss == nil && !g.resumed && g.before >= st.paused:
			loss = g
		case loss != nil && resumption == nil && g.resumed:
			resumption = g
		}
	}
	if loss == nil {
		t.Fatalf("reader %s: its bus reported no loss after the stall began", r.role)
	}
	if !loss.heartbeat {
		t.Errorf("reader %s: the loss was not the heartbeat's", r.role)
	}
	if resumption == nil {
		t.Fatalf("reader %s: its bus reported no resumption after the loss", r.role)
	}
	if resumption.before < st.resuming {
		t.Errorf("reader %s: its bus resumed at %d, %v before the proxy forwarded anything again",
			r.role, resumption.before, time.Duration(st.resuming-resumption.before))
	}

	// byMessage[i]: the newest write whose message idmap had applied at
	// applied[i] (the messages come in order, from one goroutine).
	writeOf := make(map[uint64]int, len(seqs))
	for k, s := range seqs[1:] {
		writeOf[s] = k + 1
	}
	var applied []int64
	var byMessage []int
	received := make([]bool, len(commits))
	newest := 0
	for _, m := range rec.msgs {
		k, ok := writeOf[m.seq]
		if !ok {
			continue
		}
		received[k] = true
		newest = max(newest, k)
		applied = append(applied, m.after)
		byMessage = append(byMessage, newest)
	}
	knownByMessage := func(ts int64) int {
		i, _ := slices.BinarySearch(applied, ts+1) // the messages applied by ts
		if i == 0 {
			return 0
		}
		return byMessage[i-1]
	}
	lost := 0
	for k := 1; k < len(commits); k++ {
		if !received[k] {
			lost++
		}
	}

	const (
		before = iota
		undetected
		inLossWindow
		after
	)
	names := [...]string{"before the stall", "stall not yet detected", "during the loss", "after the resumption"}
	var reads, stale, maxLag [4]int
	var maxAge [4]time.Duration
	violations := 0
	for _, rd := range rec.reads {
		got := nameIndex(rd.name) // "start" is 0, the row as created
		w := after
		switch {
		case rd.start < st.paused:
			w = before
		case rd.start < loss.after:
			w = undetected
		case rd.start < resumption.before:
			w = inLossWindow
		}
		reads[w]++
		want, inLoss := gapFloor(rec.gaps, commits, rd.start)
		want = max(want, knownByMessage(rd.start))
		if got < want {
			if violations++; violations <= 10 {
				t.Errorf("reader %s: a read begun at %d (%s) returned write %d; write %d had committed at %d and the reader knew it (in loss: %v)",
					r.role, rd.start, names[w], got, want, commits[want], inLoss)
			}
		}
		if lit := newestBefore(commits, rd.start); got < lit {
			stale[w]++
			maxLag[w] = max(maxLag[w], lit-got)
			maxAge[w] = max(maxAge[w], time.Duration(rd.start-commits[got+1])) // since its value was superseded
		}
	}
	if stale[inLossWindow] > 0 { // implied by gapFloor's rule; checked in its own words
		t.Errorf("reader %s: %d reads begun during the loss returned a value older than the newest committed write",
			r.role, stale[inLossWindow])
	}
	if reads[inLossWindow] == 0 || reads[after] == 0 {
		t.Errorf("reader %s: %d reads during the loss, %d after the resumption: the check checks nothing",
			r.role, reads[inLossWindow], reads[after])
	}

	t.Logf("reader %s: stall detected (its bus reported the loss) %v after it began; bus listening again %v after the proxy resumed; "+
		"%d of %d writes' messages never reached it",
		r.role, time.Duration(loss.before-st.paused).Round(time.Millisecond),
		time.Duration(resumption.before-st.resuming).Round(time.Millisecond), lost, len(commits)-1)
	for w, n := range names {
		t.Logf("reader %s: %-24s %5d reads, %4d older than the newest committed write (at most %d writes, %v behind)",
			r.role, n+":", reads[w], stale[w], maxLag[w], maxAge[w].Round(time.Microsecond))
	}
	t.Logf("reader %s: %d reads older than what the reader knew", r.role, violations)
}

// What a reader recorded, from read-start to read-stop: its reads, and the
// gaps and messages of its bus since it started.
type (
	readRec struct {
		start int64 // when the Get began (unix ns)
		name  string
	}
	gapRec struct {
		resumed       bool
		before, after int64 // around idmap's handling of it
		heartbeat     bool  // a loss the heartbeat found (errNoPong)
	}
	msgRec struct { // a message of another instance
		seq           uint64
		before, after int64 // around idmap's handling of it
	}
	childRecords struct {
		reads  []readRec
		errors []string // of reads that failed
		gaps   []gapRec
		msgs   []msgRec
	}
)

// readRecords reads what reader r answers to read-stop.
func readRecords(t *testing.T, r *child) childRecords {
	t.Helper()
	var rec childRecords
	for {
		f := r.expect("rec")
		if f[0] == "end" {
			return rec
		}
		switch f[0] {
		case "read":
			rec.reads = append(rec.reads, readRec{atoi64(t, f[1]), f[2]})
		case "error":
			rec.errors = append(rec.errors, f[1])
		case "gap":
			rec.gaps = append(rec.gaps, gapRec{f[1] == "resumed", atoi64(t, f[2]), atoi64(t, f[3]), f[4] == "heartbeat"})
		case "msg":
			rec.msgs = append(rec.msgs, msgRec{uint64(atoi64(t, f[1])), atoi64(t, f[2]), atoi64(t, f[3])})
		}
	}
}

// newestBefore returns the newest write committed before ts (commits[i]:
// when write i committed; commits[0] is 0, the row as it was).
func newestBefore(commits []int64, ts int64) int {
	i, _ := slices.BinarySearch(commits, ts)
	return i - 1
}

// gapFloor returns the oldest write that a read begun at ts may return, by
// the state of the bus's subscription: a read begun once idmap handled a
// loss, until the resumption, queries (it returns at least the newest write
// committed before it began); one begun after a resumption returns at least
// the newest write committed before the resumption (idmap expired
// everything then). inLoss reports the first case.
func gapFloor(gaps []gapRec, commits []int64, ts int64) (want int, inLoss bool) {
	var lastResumeBefore int64 = -1 // when the latest resumption before the read began
	for _, g := range gaps {
		if g.resumed {
			if g.before <= ts {
				inLoss = false // the maps may serve again
			}
			if g.after <= ts {
				lastResumeBefore = g.before
			}
		} else if g.after <= ts {
			inLoss = true // idmap has paused: every read queries
		}
	}
	if lastResumeBefore >= 0 {
		want = newestBefore(commits, lastResumeBefore)
	}
	if inLoss {
		want = max(want, newestBefore(commits, ts))
	}
	return want, inLoss
}

// checkReads reads what reader r recorded and checks it against commits.
func checkReads(t *testing.T, r *child, commits []int64) {
	t.Helper()
	rec := readRecords(t, r)
	for i, e := range rec.errors {
		if i < 10 {
			t.Errorf("reader %s: Get failed: %s", r.role, e)
		}
	}
	losses, resumptions := 0, 0
	for _, g := range rec.gaps {
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
	duringLoss, checked, violations := 0, 0, 0
	for _, rd := range rec.reads {
		got := nameIndex(rd.name)
		if got == 0 {
			continue // before the writes of this phase
		}
		want, inLoss := gapFloor(rec.gaps, commits, rd.start)
		if inLoss {
			duringLoss++
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

// watchedBus records, around idmap's handling, the gaps of a bus and the
// messages of other instances, and the sequence number of the last message
// published.
type watchedBus struct {
	*Bus
	mu        sync.Mutex
	gaps      []string      // protected by mu: "gap lost|resumed before after heartbeat|other|-"
	msgs      []string      // protected by mu: "msg seq before after"
	listening chan struct{} // closed at the first resumption
	once      sync.Once
	lastSeq   atomic.Uint64
}

// Publish records the sequence number of the last message; idmap calls it
// from the goroutine that committed, before the write returns.
func (w *watchedBus) Publish(ctx context.Context, msgs []bus.Message) error {
	if len(msgs) > 0 {
		w.lastSeq.Store(msgs[len(msgs)-1].Seq)
	}
	return w.Bus.Publish(ctx, msgs)
}

func (w *watchedBus) Subscribe(h bus.Handler) error {
	inner := h.Gap
	h.Gap = func(g bus.Gap) {
		before := time.Now().UnixNano()
		if inner != nil {
			inner(g)
		}
		after := time.Now().UnixNano()
		kind, why := "lost", "other"
		if g.Resumed {
			kind, why = "resumed", "-"
			w.once.Do(func() { close(w.listening) })
		} else if errors.Is(g.Err, errNoPong) {
			why = "heartbeat"
		}
		w.mu.Lock()
		w.gaps = append(w.gaps, fmt.Sprintf("gap %s %d %d %s", kind, before, after, why))
		w.mu.Unlock()
	}
	innerMsg := h.Message
	self := idmap.InstanceID()
	h.Message = func(m bus.Message) {
		before := time.Now().UnixNano()
		if innerMsg != nil {
			innerMsg(m)
		}
		after := time.Now().UnixNano()
		if m.Origin == self {
			return
		}
		w.mu.Lock()
		w.msgs = append(w.msgs, fmt.Sprintf("msg %d %d %d", m.Seq, before, after))
		w.mu.Unlock()
	}
	return w.Bus.Subscribe(h)
}

func (w *watchedBus) isListening() bool {
	st := w.gaps
	return len(st) > 0 && strings.HasPrefix(st[len(st)-1], "gap resumed")
}

// TestHelperProcess is a child of TestMultiProcess or
// TestMultiProcessStall; it does nothing in a normal run.
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
	addr := os.Getenv(e2eEnvRedis)
	if addr == "" {
		addr = os.Getenv("IDMAP_REDIS_ADDR")
	}
	var rb *Bus
	var err error
	if name := os.Getenv(e2eEnvDefaults); name != "" {
		// The default options: only the channel, and a client name the
		// test kills by.
		opts := []Option{Channel(channel), ClientName(name)}
		if sub := os.Getenv(e2eEnvSubRedis); sub != "" {
			opts = append(opts, SubscribeOptions(&redis.Options{Addr: sub}))
		}
		rb, err = New(&redis.Options{Addr: addr}, opts...)
	} else {
		opts := []Option{Channel(channel), Heartbeat(200 * time.Millisecond), Logger(log)}
		if name := os.Getenv(e2eEnvClientName); name != "" {
			opts = append(opts, ClientName(name))
		}
		rb, err = New(testOptions(addr), opts...)
	}
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
		// readloop's reads: start (unix ns), write read
		lreads [][2]int64
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
		case "set": // set ID NAME: update, answer the commit time and the sequence number of its message
			if _, err := db.ExecContext(ctx, "UPDATE items SET name = ? WHERE id = ?", f[2], id); err != nil {
				return err
			}
			say("set %d %d", time.Now().UnixNano(), w.lastSeq.Load())
		case "wfor": // wfor NAME FROM MS: write NAME<FROM>, … for MS ms; "c N NANOS" after each commit
			from, _ := strconv.ParseInt(f[2], 10, 64)
			ms, _ := strconv.ParseInt(f[3], 10, 64)
			end := time.Now().Add(time.Duration(ms) * time.Millisecond)
			n := from
			for ; time.Now().Before(end); n++ {
				if _, err := db.ExecContext(ctx, "UPDATE items SET name = ? WHERE id = 1", fmt.Sprintf("k%d", n)); err != nil {
					return err
				}
				say("c %d %d", n, time.Now().UnixNano())
				time.Sleep(time.Millisecond)
			}
			say("wdone %d", n-1)
		case "readloop": // readloop ID: Get in a loop, holding the row, until readstop
			bg.Wait()
			stop = make(chan struct{})
			lreads = lreads[:0]
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
						say("error %v", err)
						return
					}
					keep = it
					lreads = append(lreads, [2]int64{start, int64(nameIndex(it.Name))})
					time.Sleep(200 * time.Microsecond)
				}
			}(stop)
			say("reading")
		case "readstop": // readstop: wait until ready, stop, "r START N" per read, then "rend …"
			wctx, cancel := context.WithTimeout(ctx, e2eNever)
			err := idmap.WaitReady(wctx, db)
			cancel()
			if err != nil {
				return err
			}
			close(stop)
			bg.Wait()
			for _, r := range lreads {
				say("r %d %d", r[0], r[1])
			}
			st, _ := idmap.StatsOf(db)
			say("rend %d %d %d %d", st.Bus.LeaseExpiries, st.Bus.Gaps, st.Bus.Probes, st.Bus.Lease)
		case "stats": // stats: answer the bus counters of idmap's Stats
			st, ok := idmap.StatsOf(db)
			if !ok {
				return errors.New("StatsOf: not an idmap database")
			}
			say("stats %d %t", st.Bus.Gaps, st.Bus.Listening)
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
			for _, m := range w.msgs {
				say("rec %s", m)
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
