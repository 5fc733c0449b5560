package pgfeed_test

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// percentiles reports p50, p99 and max of ds, in µs, as metrics of b.
func percentiles(b *testing.B, prefix string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))].Microseconds())
	}
	b.ReportMetric(at(0.50), prefix+"-p50-µs")
	b.ReportMetric(at(0.99), prefix+"-p99-µs")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds()), prefix+"-max-µs")
}

// syncConn returns a connection of the plain pool with synchronous_commit
// on (the test server runs with it off, which delays what the server
// streams by up to wal_writer_delay).
func syncConn(b *testing.B, e *env) *sql.Conn {
	c, err := e.plain.Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.ExecContext(context.Background(), `SET synchronous_commit = on`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkFeedDelivery measures, for a write by another connection, the
// time from its commit (Exec returned) to the moment idmap applied the
// feed's message: delivery p50, p99 and max.
func BenchmarkFeedDelivery(b *testing.B) {
	e := newEnv(b)
	e.exec(`CREATE TABLE bench (id bigint PRIMARY KEY, v bigint)`, `INSERT INTO bench VALUES (1, 0)`)
	tp := &tap{Feed: e.feed("feed_bench", []string{"bench"})}
	var seen atomic.Int64
	tp.onMessage(func(m bus.Message) {
		if names(m, "bench", 1) {
			seen.Add(1)
		}
	})
	db := e.open("feed_bench", idmap.WithSource(tp))
	waitUntil(b, "the feed listens", func() bool { return listening(db) })
	c := syncConn(b, e)
	ctx := context.Background()
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		before := seen.Load()
		if _, err := c.ExecContext(ctx, `UPDATE bench SET v = $1 WHERE id = 1`, i); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		for seen.Load() == before {
			time.Sleep(5 * time.Microsecond)
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	percentiles(b, "delivery", ds)
}

// BenchmarkCommitWait measures Commit of a transaction whose write fires a
// trigger (the reader cannot bound it), with the feed (Commit waits for
// it) and without (the reference, in the same run).
func BenchmarkCommitWait(b *testing.B) {
	for _, withFeed := range []bool{false, true} {
		b.Run("feed="+strconv.FormatBool(withFeed), func(b *testing.B) {
			e := newEnv(b)
			e.exec(feedSchema...)
			name := "feed_wait_" + strconv.FormatBool(withFeed)
			var opts []idmap.Option
			if withFeed {
				opts = append(opts, idmap.WithSource(e.feed(name, feedTables)))
			}
			db := e.open(name, opts...)
			if withFeed {
				waitUntil(b, "the feed listens", func() bool { return listening(db) })
			}
			ctx := context.Background()
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO events (item, name) VALUES (1, $1)`, "n"+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			b.StopTimer()
			percentiles(b, "commit", ds)
		})
	}
}

// BenchmarkWalsenderCPU measures the CPU time the server's walsenders
// spend per commit, with 1 and 2 feeds (consumers) on the same
// publication: each consumer has a walsender of its own, decoding the
// whole WAL. It reads /proc, so the server must run on this machine.
func BenchmarkWalsenderCPU(b *testing.B) {
	for _, consumers := range []int{1, 2} {
		b.Run("consumers="+strconv.Itoa(consumers), func(b *testing.B) {
			e := newEnv(b)
			e.exec(`CREATE TABLE bench (id bigint PRIMARY KEY, v bigint)`, `INSERT INTO bench VALUES (1, 0)`)
			var slots []string
			var seen atomic.Int64
			for i := range consumers {
				tp := &tap{Feed: e.feed("feed_cpu_"+strconv.Itoa(i), []string{"bench"})}
				tp.onMessage(func(m bus.Message) { seen.Add(1) })
				db := e.open("feed_cpu_"+strconv.Itoa(i), idmap.WithSource(tp))
				waitUntil(b, "the feed listens", func() bool { return listening(db) })
				slots = append(slots, tp.Slot())
			}
			cpu := func() time.Duration {
				var total time.Duration
				for _, s := range slots {
					var pid int
					if err := e.plain.QueryRow(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, s).Scan(&pid); err != nil {
						b.Fatal(err)
					}
					raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
					if err != nil {
						b.Skipf("cannot read the walsender's CPU time: %v", err)
					}
					fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
					ut, _ := strconv.ParseInt(fields[11], 10, 64)
					st, _ := strconv.ParseInt(fields[12], 10, 64)
					total += time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
				}
				return total
			}
			c := syncConn(b, e)
			ctx := context.Background()
			before := cpu()
			b.ResetTimer()
			for i := range b.N {
				if _, err := c.ExecContext(ctx, `UPDATE bench SET v = $1 WHERE id = 1`, i); err != nil {
					b.Fatal(err)
				}
			}
			waitUntil(b, "every commit is delivered", func() bool { return seen.Load() >= int64(consumers*b.N) })
			b.StopTimer()
			b.ReportMetric(float64((cpu()-before).Microseconds())/float64(b.N), "walsender-µs/commit")
		})
	}
}
