package idmap_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-sql-driver/mysql"
)

type clmpRow struct {
	ID int64 `db:"id,pk"`
	V  int64 `db:"v"`
}

func (clmpRow) TableName() string { return "cl_mp" }

const clmpRows = 8

// clmpBound is how long after a commit a read may still return an older
// version: the lease (idmap.DefaultLease, 500 ms). The change log delivers
// a commit within a poll interval (50 ms) plus one read; a reader whose
// connection is killed fails its read and reports a gap (the database is
// flushed and serves nothing until the reader resumes); a reader that
// stalls without failing stops being proven by its probes, and the maps
// stop serving a lease after the last proof. The lease bounds all three.
const clmpBound = idmap.DefaultLease

// TestChangeLogMultiProcess (MariaDB/MySQL): three processes (this test
// binary run again) share one database: A writes through idmap, B through
// a plain database/sql pool, C reads through idmap with the change log
// attached (default options) while it kills the change log reader's own
// connection (KILL of that connection id only) every 250 ms. Every write
// increments a row's version; afterwards the parent checks every read of
// C against the writes of A and B: a read that returns a version older
// than one committed more than clmpBound before the read began is a late
// read, and there must be none. The modes: "with" (the driver's
// server-side prepared statements), "with-interpolate" (interpolateParams:
// every statement is text), and "without", which runs C without the
// change log and must find late reads (the test can fail).
func TestChangeLogMultiProcess(t *testing.T) {
	dsn := os.Getenv("IDMAP_MYSQL_DSN")
	if dsn == "" {
		t.Skip("IDMAP_MYSQL_DSN is not set: the multi-process change log test needs MariaDB/MySQL")
	}
	for _, mode := range []string{"with", "with-interpolate", "without"} {
		t.Run(mode, func(t *testing.T) {
			withLog := mode != "without"
			res := runCLMultiProcess(t, dsn, withLog, mode == "with-interpolate", 2*time.Second)
			t.Logf("%s: %d late reads of %d reads; %d writes (A idmap %d, B plain %d); %d kills of the reader's connection (%d gaps); the most a read was behind: %v",
				mode, res.late, res.reads, res.writesA+res.writesB, res.writesA, res.writesB, res.kills, res.gaps, res.worst.Round(time.Millisecond))
			if res.reads == 0 || res.writesA == 0 || res.writesB == 0 {
				t.Fatalf("nothing to check: %+v", res)
			}
			if withLog {
				if res.late != 0 {
					t.Fatalf("%d late reads (a version older than one committed more than %v earlier) of %d; first: %s", res.late, clmpBound, res.reads, res.first)
				}
				if res.kills == 0 || res.gaps == 0 {
					t.Fatalf("the reader's connection was killed %d times, %d gaps: the kills were not tested", res.kills, res.gaps)
				}
			} else if res.late == 0 {
				t.Fatalf("no late read of %d without the change log: the test proves nothing", res.reads)
			}
		})
	}
}

type clmpResult struct {
	reads, late, writesA, writesB, kills, gaps int
	worst                                      time.Duration // the most a read was behind a commit
	first                                      string
}

type clmpCommit struct {
	at int64 // UnixNano after the commit returned (not before the commit)
	v  int64
}

func runCLMultiProcess(t *testing.T, dsn string, withLog, interp bool, d time.Duration) clmpResult {
	dbName := fmt.Sprintf("idmap_clmp%s_%d", idmap.RunID, clSeq.Add(1))
	cfg := idmap.MySQLTestDatabase(t, dsn, dbName)
	plain, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	mustExec(t, plain, `CREATE TABLE cl_mp (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)`)
	for i := 1; i <= clmpRows; i++ {
		mustExec(t, plain, `INSERT INTO cl_mp (id, v) VALUES (?, 0)`, i)
	}
	if err := idmap.InstallChangeLog(context.Background(), plain, "cl_mp"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	log, ip := "0", "0"
	if withLog {
		log = "1"
	}
	if interp {
		ip = "1"
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	outs := make([][]byte, 3)
	for i, role := range []string{"A", "B", "C"} {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChangeLogMultiProcessChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "IDMAP_CLMP_ROLE="+role, "IDMAP_CLMP_DB="+dbName,
			"IDMAP_CLMP_OUT="+filepath.Join(dir, role), "IDMAP_CLMP_DUR="+d.String(), "IDMAP_CLMP_LOG="+log, "IDMAP_CLMP_INTERP="+ip)
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("child %c: %v\n%s", "ABC"[i], err, outs[i])
		}
	}

	for _, l := range strings.Split(string(outs[2]), "\n") {
		if strings.Contains(l, "C: ") {
			t.Log(strings.TrimSpace(l))
		}
	}
	var res clmpResult
	commits := make([][]clmpCommit, clmpRows+1)
	for _, role := range []string{"A", "B"} {
		n := 0
		clmpScan(t, filepath.Join(dir, role), func(f []int64) {
			commits[f[0]] = append(commits[f[0]], clmpCommit{at: f[2], v: f[1]})
			n++
		})
		if role == "A" {
			res.writesA = n
		} else {
			res.writesB = n
		}
	}
	for _, c := range commits {
		sort.Slice(c, func(i, j int) bool { return c[i].at < c[j].at })
	}
	clmpScan(t, filepath.Join(dir, "C"), func(f []int64) {
		if f[0] == 0 { // the kills, and the gaps C's database saw
			res.kills, res.gaps = int(f[1]), int(f[2])
			return
		}
		res.reads++
		id, v, start := f[0], f[1], f[2]
		// The oldest commit of a newer version than the one read, among
		// those that returned before the read began: the read is that
		// much behind.
		var behind int64
		var newer clmpCommit
		for _, x := range commits[id] {
			if x.at >= start {
				break
			}
			if x.v > v && start-x.at > behind {
				behind, newer = start-x.at, x
			}
		}
		res.worst = max(res.worst, time.Duration(behind))
		if behind > int64(clmpBound) {
			res.late++
			if res.first == "" {
				res.first = fmt.Sprintf("row %d: read version %d, version %d committed %v before the read began", id, v, newer.v, time.Duration(behind))
			}
		}
	})
	return res
}

// clmpScan calls f with the integers of each line of the file.
func clmpScan(t *testing.T, file string, f func([]int64)) {
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var nums []int64
		for _, s := range strings.Fields(sc.Text()) {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", file, sc.Text(), err)
			}
			nums = append(nums, n)
		}
		if len(nums) != 3 {
			t.Fatalf("%s: %q", file, sc.Text())
		}
		f(nums)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestChangeLogMultiProcessChild is a child of TestChangeLogMultiProcess.
func TestChangeLogMultiProcessChild(t *testing.T) {
	role := os.Getenv("IDMAP_CLMP_ROLE")
	if role == "" {
		t.Skip("child-process entry point: runs only in the processes TestChangeLogMultiProcess starts (IDMAP_CLMP_ROLE set)")
	}
	d, err := time.ParseDuration(os.Getenv("IDMAP_CLMP_DUR"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(os.Getenv("IDMAP_MYSQL_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = os.Getenv("IDMAP_CLMP_DB")
	cfg.InterpolateParams = os.Getenv("IDMAP_CLMP_INTERP") == "1"
	out, err := os.Create(os.Getenv("IDMAP_CLMP_OUT"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(out)
	defer func() {
		if err := w.Flush(); err != nil {
			t.Error(err)
		}
		if err := out.Close(); err != nil {
			t.Error(err)
		}
	}()
	mc, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	idName := "clmp/" + cfg.DBName
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 3))
	end := time.Now().Add(d)
	switch role {
	case "A", "B":
		var db *sql.DB
		if role == "A" {
			db = sql.OpenDB(idmap.NewConnector(mc, idmap.Name(idName), idmap.Dialect("mysql")))
		} else {
			db = sql.OpenDB(mc)
		}
		defer db.Close()
		for time.Now().Before(end) {
			id := rng.IntN(clmpRows) + 1
			// The new version comes back as LAST_INSERT_ID (same
			// transaction); the time is taken after the commit returned.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE cl_mp SET v = LAST_INSERT_ID(v + 1) WHERE id = ?`, id); err != nil {
				t.Fatal(err)
			}
			var v int64
			if err := tx.QueryRowContext(ctx, `SELECT LAST_INSERT_ID()`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			at := time.Now().UnixNano()
			fmt.Fprintf(w, "%d %d %d\n", id, v, at)
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	case "C":
		var opts []idmap.Option
		var kills int
		stop := make(chan struct{})
		var killer sync.WaitGroup
		if os.Getenv("IDMAP_CLMP_LOG") == "1" {
			// The change log reads through a pool of its own whose
			// connections report their ids: only those are killed.
			ids := &clmpIDs{}
			pool := sql.OpenDB(&clmpConnector{Connector: mc, ids: ids})
			defer pool.Close()
			cl, err := idmap.NewChangeLog(pool, idName)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			opts = append(opts, idmap.WithSource(cl))
			admin := sql.OpenDB(mc)
			defer admin.Close()
			killer.Add(1)
			go func() {
				defer killer.Done()
				tk := time.NewTicker(250 * time.Millisecond)
				defer tk.Stop()
				var last int64
				for {
					select {
					case <-stop:
						return
					case <-tk.C:
					}
					id := ids.last.Load()
					if id == 0 || id == last {
						continue // not connected again yet
					}
					if _, err := admin.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
						t.Errorf("KILL %d: %v", id, err)
						return
					}
					last = id
					kills++
				}
			}()
		}
		db := sql.OpenDB(idmap.NewConnector(mc, append(opts, idmap.Name(idName), idmap.Dialect("mysql"))...))
		defer db.Close()
		// The shared map holds an entry while the program holds its
		// value (as an application would).
		var held [clmpRows + 1]*clmpRow
		for time.Now().Before(end) {
			id := int64(rng.IntN(clmpRows) + 1)
			start := time.Now().UnixNano()
			p, err := idmap.Get[clmpRow](ctx, db, id)
			if err != nil {
				t.Fatal(err)
			}
			held[id] = p
			fmt.Fprintf(w, "%d %d %d\n", id, p.V, start)
		}
		runtime.KeepAlive(&held)
		close(stop)
		killer.Wait()
		st, _ := idmap.StatsOf(db)
		t.Logf("C: %+v", st)
		fmt.Fprintf(w, "0 %d %d\n", kills, st.Bus.Gaps)
	}
}

// clmpConnector records the connection id of each connection it opens.
type clmpConnector struct {
	driver.Connector
	ids *clmpIDs
}

type clmpIDs struct{ last atomic.Int64 }

func (c *clmpConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("clmp: %T is not a QueryerContext", conn)
	}
	rows, err := q.QueryContext(ctx, "SELECT CONNECTION_ID()", nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	dest := make([]driver.Value, 1)
	err = rows.Next(dest)
	rows.Close()
	if err != nil && err != io.EOF {
		conn.Close()
		return nil, err
	}
	var id int64
	switch x := dest[0].(type) {
	case int64:
		id = x
	case uint64:
		id = int64(x)
	case []byte:
		id, _ = strconv.ParseInt(string(x), 10, 64)
	}
	c.ids.last.Store(id)
	return conn, nil
}
