package pgfeed_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgfeed"
)

type counterRow struct {
	ID int64 `db:"id,pk"`
	V  int64 `db:"v"`
}

func (counterRow) TableName() string { return "counters" }

const modelRows = 6

// runModel runs readers through idmap against two writers: one through
// idmap, one outside it (a plain connection pool). Each write gives its
// row the next version, under the row's lock. A version is "delivered"
// when its writer returned (idmap) or, for the outside writer, once the
// feed has passed its commit (the feed's own mark, run after the commit);
// without a feed, as soon as it committed. A read that returns a version
// older than one delivered before the read began is a violation.
func runModel(t *testing.T, withFeed, kill bool, d time.Duration) (reads, violations int64) {
	e := newEnv(t)
	e.exec(`CREATE TABLE counters (id bigint PRIMARY KEY, v bigint NOT NULL)`,
		`INSERT INTO counters SELECT g, 0 FROM generate_series(1, `+strconv.Itoa(modelRows)+`) g`)
	name := "model_" + strconv.FormatBool(withFeed) + "_" + strconv.FormatBool(kill)
	var opts []idmap.Option
	var syncer bus.Syncer
	var f *pgfeed.Feed
	if withFeed {
		f = e.feed(name, []string{"counters"}, pgfeed.Backoff(10*time.Millisecond, 50*time.Millisecond))
		syncer = f
		opts = append(opts, idmap.WithSource(f))
	}
	db := e.open(name, opts...)
	if withFeed {
		waitUntil(t, "the feed listens", func() bool { return listening(db) })
	}
	ctx := context.Background()

	var locks [modelRows + 1]sync.Mutex
	var versions [modelRows + 1]int64     // under locks
	var bound [modelRows + 1]atomic.Int64 // the newest delivered version
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The writers: 0 through idmap, 1 a plain pool, 2 a psql process
	// (when psql is installed).
	writers := []int{0, 1}
	var ps *psqlProc
	if path, err := exec.LookPath("psql"); err == nil {
		ps = startPsql(t, path, e.base, e.schema)
		writers = append(writers, 2)
	}
	write := func(rng *rand.Rand, writer int) {
		outside := writer != 0
		i := rng.IntN(modelRows) + 1
		locks[i].Lock()
		defer locks[i].Unlock()
		v := versions[i] + 1
		var err error
		switch writer {
		case 0:
			_, err = db.ExecContext(ctx, `UPDATE counters SET v = $1 WHERE id = $2`, v, i)
		case 1:
			_, err = e.plain.ExecContext(ctx, `UPDATE counters SET v = $1 WHERE id = $2`, v, i)
		case 2:
			err = ps.exec(fmt.Sprintf(`UPDATE counters SET v = %d WHERE id = %d`, v, i))
		}
		if err != nil {
			t.Error(err)
			return
		}
		versions[i] = v
		if outside && syncer != nil {
			q, args, wait := syncer.SyncStatement()
			_, err := e.plain.ExecContext(ctx, q, args...)
			if err == nil {
				err = wait(ctx)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
		bound[i].Store(v)
	}
	for w, writer := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				write(rng, writer)
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
			}
		}()
	}
	var kills atomic.Int64
	if kill {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				// Only this feed's own walsender.
				var n int64
				if slot := f.Slot(); slot != "" {
					_ = e.plain.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot).Scan(&n)
				}
				kills.Add(n)
			}
		}()
		defer func() { t.Logf("%d walsenders terminated", kills.Load()) }()
	}
	var nReads, nViolations atomic.Int64
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 11))
			var held [modelRows + 1]*counterRow // keep the weak entries alive
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int64(rng.IntN(modelRows) + 1)
				b := bound[i].Load()
				var p *counterRow
				var err error
				viaGet := true
				if rng.IntN(4) == 0 {
					viaGet = false
					rows, qerr := db.QueryContext(ctx, `SELECT id, v FROM counters WHERE id = $1`, i)
					if qerr != nil {
						t.Error(qerr)
						return
					}
					err = idmap.Bind(rows, &p)
				} else {
					p, err = idmap.Get[counterRow](ctx, db, i)
				}
				if err != nil {
					t.Error(err)
					return
				}
				held[i] = p
				nReads.Add(1)
				if p.V < b {
					if nViolations.Add(1) <= 3 && withFeed {
						// What a failure needs to be understood: the read,
						// and the database's state when it was seen.
						st, _ := idmap.StatsOf(db)
						t.Logf("stale read: key %d version %d (object %p, by Get %v), %d delivered before the read, %d now; lease %v, gaps %d, lease expiries %d, shared hits %d misses %d refreshes %d",
							i, p.V, p, viaGet, b, bound[i].Load(), st.Bus.Lease, st.Bus.Gaps, st.Bus.LeaseExpiries, st.Shared.Hits, st.Shared.Misses, st.Shared.Refreshes)
					}
				}
			}
		}()
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	return nReads.Load(), nViolations.Load()
}

// TestModelOutsideWriter: with the feed, no read is older than what the
// feed delivered before it began.
func TestModelOutsideWriter(t *testing.T) {
	reads, violations := runModel(t, true, false, 3*time.Second)
	t.Logf("with the feed: %d reads, %d stale", reads, violations)
	if violations != 0 {
		t.Fatalf("%d stale reads out of %d with the feed", violations, reads)
	}
}

// TestModelOutsideWriterFeedKilled: the same while the feed's walsender is
// terminated every 300ms: each gap pauses the database, and still no read
// is stale.
func TestModelOutsideWriterFeedKilled(t *testing.T) {
	reads, violations := runModel(t, true, true, 3*time.Second)
	t.Logf("with the feed killed repeatedly: %d reads, %d stale", reads, violations)
	if violations != 0 {
		t.Fatalf("%d stale reads out of %d with the feed", violations, reads)
	}
}

// TestModelOutsideWriterWithoutFeed: the same run without the feed reports
// stale reads: the model test can fail.
func TestModelOutsideWriterWithoutFeed(t *testing.T) {
	reads, violations := runModel(t, false, false, 2*time.Second)
	t.Logf("without the feed: %d reads, %d stale", reads, violations)
	if violations == 0 {
		t.Fatalf("no stale read out of %d without the feed: the model test cannot see what the feed fixes", reads)
	}
}

// psqlProc is a psql process that runs one statement at a time from its
// standard input.
type psqlProc struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

func startPsql(t *testing.T, path, dsn, schema string) *psqlProc {
	cmd := exec.Command(path, dsn, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	p := &psqlProc{in: in, out: bufio.NewScanner(out)}
	if err := p.exec("SET search_path = " + schema); err != nil {
		t.Fatal(err)
	}
	return p
}

// exec runs stmt and returns once psql has run it (it echoes a line after).
func (p *psqlProc) exec(stmt string) error {
	if _, err := fmt.Fprintf(p.in, "%s;\n\\echo idmap-done\n", stmt); err != nil {
		return err
	}
	for p.out.Scan() {
		if strings.TrimSpace(p.out.Text()) == "idmap-done" {
			return nil
		}
	}
	return fmt.Errorf("psql ended: %v", p.out.Err())
}
