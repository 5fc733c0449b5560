package idmap_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
)

// BenchmarkChangeLogCommitWait: an autocommit write through idmap to a
// table with a trigger of the application's, whose effects the statement
// reader cannot bound, without a change log and with one attached: with
// it, the statement returns only once the change log has read the log up
// to its end (read-your-writes). p50 and p99 per statement in the log.
func BenchmarkChangeLogCommitWait(b *testing.B) {
	for _, e := range clEnvs(b) {
		b.Run(e.name, func(b *testing.B) {
			e.setup(b, 1)
			trigger := `CREATE TRIGGER cl_touch AFTER UPDATE ON cl_items BEGIN SELECT 1; END`
			if e.dialect == "mysql" {
				trigger = `CREATE TRIGGER cl_touch AFTER UPDATE ON cl_items FOR EACH ROW SET @cl_touched = 1`
			}
			mustExec(b, e.plain, trigger)
			cl := e.changeLog(b)
			for _, withLog := range []bool{false, true} {
				name := "without"
				var opts []idmap.Option
				if withLog {
					name = "with"
					opts = append(opts, idmap.WithSource(cl))
				}
				b.Run(name, func(b *testing.B) {
					db := e.open(b, opts...)
					for deadline := time.Now().Add(30 * time.Second); withLog && !clListening(db); {
						if time.Now().After(deadline) {
							b.Fatal("the change log does not listen")
						}
						time.Sleep(10 * time.Millisecond)
					}
					ctx := context.Background()
					var ds []time.Duration
					for n := 0; b.Loop(); n++ {
						start := time.Now()
						if _, err := db.ExecContext(ctx, `UPDATE cl_items SET v = ? WHERE id = 1`, n+1); err != nil {
							b.Fatal(err)
						}
						ds = append(ds, time.Since(start))
					}
					slices.Sort(ds)
					p := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
					b.ReportMetric(float64(p(0.5).Microseconds()), "p50-µs")
					b.ReportMetric(float64(p(0.99).Microseconds()), "p99-µs")
					b.Logf("%s %s: %d statements: p50 %v, p99 %v, max %v", e.name, name, len(ds), p(0.5), p(0.99), ds[len(ds)-1])
				})
			}
		})
	}
}
