package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
)

// BenchmarkGetWhileWriting: one goroutine makes 2×getBatch shared-map Get
// hits (rows 1 to nRows/2, loaded before) while a second goroutine, on the
// other core, does something else until the hits are done; each side's
// metric is the time of the hits, from when both goroutines run
// (runParallel). What the second goroutine does:
//
//	idle   nothing (it returns at once): the hits alone
//	cpu    arithmetic (cpuWork): the reference, both cores busy
//	rows   UPDATEs of other rows of the same table, one row each (rows
//	       nRows/2+1 to nRows), through idmap: each expires its row
//	table  UPDATEs of one row of another table through idmap
//
// The ratio rows / cpu is what writes to a table cost the hits of its
// other rows: after a row's expiry, an entry loaded before it is checked
// against the table's expired keys (a read lock on one of its 16 shards
// of keys) instead of one word. table / cpu is what writes elsewhere cost.
// No side takes a lock of the database or of the table; the metric
// "writes" is how many UPDATEs each write side made per op.
func BenchmarkGetWhileWriting(b *testing.B) {
	bg := context.Background()
	be := backendNamed("SQLiteMem")
	if err := be.open(); err != nil {
		b.Fatal(err)
	}
	for _, s := range []string{
		"DROP TABLE IF EXISTS bench_other",
		"CREATE TABLE bench_other (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
		"INSERT INTO bench_other (id, n) VALUES (1, 0)",
	} {
		if _, err := be.plain.ExecContext(bg, s); err != nil {
			b.Fatal(err)
		}
	}
	idmap.Flush(bg, be.idmapName())
	all := loadAll(b, bg, be)
	var failed atomic.Bool
	var done atomic.Bool
	var sink atomic.Uint64
	writes := map[string]int{}
	var took time.Duration
	reader := func() {
		defer done.Store(true)
		t0 := time.Now()
		defer func() { took = time.Since(t0) }()
		id := int64(0)
		for range 2 * getBatch {
			id = id%(nRows/2) + 1
			u, err := idmap.Get[User](bg, be.idm, id)
			if err != nil || u != all[id-1] {
				failed.Store(true)
				return
			}
		}
	}
	update := func(kind string) func() {
		q, lo, span := "UPDATE bench_users SET age = age WHERE id = ?", int64(nRows/2+1), int64(nRows/2)
		if kind == "table" {
			q, lo, span = "UPDATE bench_other SET n = n + 1 WHERE id = ?", 1, 1
		}
		q = be.q(q)
		return func() {
			for i := int64(0); !done.Load(); i++ {
				if _, err := be.idm.ExecContext(bg, q, lo+i%span); err != nil {
					failed.Store(true)
					return
				}
				writes[kind]++
			}
		}
	}
	others := map[string]func(){
		"idle": func() {},
		"cpu": func() {
			for !done.Load() {
				sink.Add(cpuWork(1, 100))
			}
		},
		"rows":  update("rows"),
		"table": update("table"),
	}
	var sides []side
	for _, kind := range []string{"idle", "cpu", "rows", "table"} {
		sides = append(sides, side{name: kind, timed: func() (time.Duration, error) {
			done.Store(false)
			runParallel(2, func(g int) {
				if g == 0 {
					reader()
				} else {
					others[kind]()
				}
			})
			if failed.Load() {
				return 0, fmt.Errorf("%s: a Get missed or an UPDATE failed", kind)
			}
			return took, nil
		}})
	}
	paired(b, sides)
	for _, kind := range []string{"rows", "table"} {
		b.ReportMetric(float64(writes[kind])/float64(b.N+1), kind+"-writes/op")
	}
	runtime.KeepAlive(all)
}
