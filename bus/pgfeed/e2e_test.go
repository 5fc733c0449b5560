package pgfeed_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus/pgfeed"
)

// The multi-process test: the test process writes through idmap, a child
// process writes through a plain driver, and another child reads through
// idmap with a feed of its own, while the test terminates that feed's
// walsender now and then. The reader learns of each commit (the test
// relays it), waits until its feed has passed it (the feed's own mark),
// and from then on counts a read of an older version as stale.

const (
	envRole = "PGFEED_E2E_ROLE" // "reader" or "writer" in a child
	envDSN  = "PGFEED_E2E_DSN"  // the schema's DSN
	envPub  = "PGFEED_E2E_PUB"  // the publication (reader)
	envApp  = "PGFEED_E2E_APP"  // the feed's application_name (reader)
)

// TestHelperProcess is a child of TestMultiProcess; it does nothing in a
// normal run.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv(envRole) {
	case "reader":
		e2eReader()
	case "writer":
		e2eWriter()
	default:
		return
	}
	os.Exit(0)
}

func e2eFail(err error) {
	fmt.Printf("E2E error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	os.Exit(1)
}

// e2eWriter runs "set ID V" lines from stdin through a plain pool and
// answers "ok" once each committed.
func e2eWriter() {
	db, err := sql.Open("pgx", os.Getenv(envDSN))
	if err != nil {
		e2eFail(err)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var id, v int64
		if _, err := fmt.Sscanf(in.Text(), "set %d %d", &id, &v); err != nil {
			e2eFail(err)
		}
		if _, err := db.Exec(`UPDATE counters SET v = $1 WHERE id = $2`, v, id); err != nil {
			e2eFail(err)
		}
		fmt.Println("E2E ok")
	}
}

// e2eReader reads through idmap with a feed until stdin says "done", and
// learns of commits from "committed ID V" lines.
func e2eReader() {
	ctx := context.Background()
	dsn := os.Getenv(envDSN)
	f, err := pgfeed.New(ctx, dsn, "e2e", pgfeed.ExistingPublication(os.Getenv(envPub)),
		pgfeed.ApplicationName(os.Getenv(envApp)), pgfeed.Backoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		e2eFail(err)
	}
	db, err := idmap.Open("pgx", dsn, idmap.Name("e2e"), idmap.WithSource(f))
	if err != nil {
		e2eFail(err)
	}
	plain, err := sql.Open("pgx", dsn)
	if err != nil {
		e2eFail(err)
	}
	for !listening(db) {
		time.Sleep(time.Millisecond)
	}
	var bound [modelRows + 1]atomic.Int64
	var reads, stale atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			var held [modelRows + 1]*counterRow
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int64(rng.IntN(modelRows) + 1)
				b := bound[i].Load()
				p, err := idmap.Get[counterRow](ctx, db, i)
				if err != nil {
					e2eFail(err)
				}
				held[i] = p
				reads.Add(1)
				if p.V < b {
					stale.Add(1)
				}
			}
		}()
	}
	fmt.Println("E2E ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := in.Text()
		if line == "done" {
			break
		}
		var id, v int64
		if _, err := fmt.Sscanf(line, "committed %d %d", &id, &v); err != nil {
			e2eFail(err)
		}
		// The commit happened before this line was sent: once the feed
		// passed a mark made now, it has delivered the commit.
		q, args, wait := f.SyncStatement()
		if _, err := plain.ExecContext(ctx, q, args...); err != nil {
			e2eFail(err)
		}
		if err := wait(ctx); err != nil {
			e2eFail(err)
		}
		bound[id].Store(v)
		fmt.Println("E2E ok")
	}
	close(stop)
	wg.Wait()
	fmt.Printf("E2E result %d %d\n", reads.Load(), stale.Load())
}

// child is a child process driven through its stdin and stdout.
type child struct {
	in  io.WriteCloser
	out *bufio.Scanner
	cmd *exec.Cmd
}

func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
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
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitFor):
			cmd.Process.Kill()
		}
	})
	return &child{in: in, out: bufio.NewScanner(out), cmd: cmd}
}

// send writes a line and returns the child's next reply (without "E2E ").
func (c *child) send(t *testing.T, line string) string {
	t.Helper()
	if line != "" {
		if _, err := fmt.Fprintln(c.in, line); err != nil {
			t.Fatal(err)
		}
	}
	for c.out.Scan() {
		if r, ok := strings.CutPrefix(c.out.Text(), "E2E "); ok {
			if strings.HasPrefix(r, "error ") {
				t.Fatalf("child: %s", r)
			}
			return r
		}
	}
	t.Fatalf("child ended: %v", c.out.Err())
	return ""
}

func TestMultiProcess(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE counters (id bigint PRIMARY KEY, v bigint NOT NULL)`,
		`INSERT INTO counters SELECT g, 0 FROM generate_series(1, `+strconv.Itoa(modelRows)+`) g`)
	pub, app := unique("pub"), unique("e2e_reader")
	e.exec(`CREATE PUBLICATION ` + pub + ` FOR TABLE counters`)
	t.Cleanup(func() { e.exec(`DROP PUBLICATION IF EXISTS ` + pub) })
	reader := startChild(t, envRole+"=reader", envDSN+"="+e.dsn, envPub+"="+pub, envApp+"="+app)
	if r := reader.send(t, ""); r != "ready" {
		t.Fatalf("reader: %q", r)
	}
	writer := startChild(t, envRole+"=writer", envDSN+"="+e.dsn)
	db := e.open("e2e_writer")
	ctx := context.Background()

	stop := make(chan struct{})
	var kills atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(400 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Only the reader's own walsender, found by its application_name.
			var n int64
			_ = e.plain.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication WHERE application_name = $1`, app).Scan(&n)
			kills.Add(n)
		}
	}()
	// Rows 1–3 are written by the plain writer, 4–6 through idmap here:
	// each row has one writer, so its versions commit in order.
	rng := rand.New(rand.NewPCG(5, 8))
	var versions [modelRows + 1]int64
	deadline := time.Now().Add(3 * time.Second)
	writes := 0
	for time.Now().Before(deadline) {
		i := int64(rng.IntN(modelRows) + 1)
		versions[i]++
		v := versions[i]
		if i <= modelRows/2 {
			if r := writer.send(t, fmt.Sprintf("set %d %d", i, v)); r != "ok" {
				t.Fatalf("writer: %q", r)
			}
		} else if _, err := db.ExecContext(ctx, `UPDATE counters SET v = $1 WHERE id = $2`, v, i); err != nil {
			t.Fatal(err)
		}
		if r := reader.send(t, fmt.Sprintf("committed %d %d", i, v)); r != "ok" {
			t.Fatalf("reader: %q", r)
		}
		writes++
	}
	close(stop)
	wg.Wait()
	r := reader.send(t, "done")
	var reads, stale int64
	if _, err := fmt.Sscanf(r, "result %d %d", &reads, &stale); err != nil {
		t.Fatalf("reader: %q", r)
	}
	t.Logf("%d writes, %d reads in the reader process, %d stale, %d walsenders terminated", writes, reads, stale, kills.Load())
	if stale != 0 {
		t.Fatalf("%d stale reads out of %d", stale, reads)
	}
}
