package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/georgysavva/scany/v2/sqlscan"

	"github.com/go-idmap/idmap"
)

// On a shared machine, the load changes from one second to the next by more
// than idmap's targets allow (3% for the driver's overhead): two benchmarks
// run one after the other do not see the same machine. BenchmarkPaired runs
// the ways to do one thing side by side instead, one operation of each per
// iteration, in a rotating order, and reports each side's mean time as a
// metric "<side>-ns/op". A burst of load then falls on every side alike, and
// the ratio of two metrics of one run is what cmd/ratios judges the targets
// by (the separate benchmarks give the absolute figures).

type side struct {
	name string
	op   func() error
	// timed, when set, stands for op and says how long the part of its
	// run that counts took (runParallel's work); paired adds that instead
	// of the wall time of the call.
	timed func() (time.Duration, error)
}

// run runs s once and returns the time it counts.
func (s side) run() (time.Duration, error) {
	if s.timed != nil {
		return s.timed()
	}
	t0 := time.Now()
	err := s.op()
	return time.Since(t0), err
}

func paired(b *testing.B, sides []side) map[string]time.Duration {
	for _, s := range sides { // warm up: pools, caches, plans
		if _, err := s.run(); err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
	}
	total := make([]time.Duration, len(sides))
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for j := range sides {
			k := (j + n) % len(sides)
			d, err := sides[k].run()
			if err != nil {
				b.Fatalf("%s: %v", sides[k].name, err)
			}
			total[k] += d
		}
		n++
	}
	byName := make(map[string]time.Duration, len(sides))
	for k, s := range sides {
		b.ReportMetric(float64(total[k].Nanoseconds())/float64(n), s.name+"-ns/op")
		byName[s.name] = total[k]
	}
	return byName
}

func BenchmarkPaired(b *testing.B) {
	bg := context.Background()
	forEach(b, func(b *testing.B, be *backend) {
		b.Run("pointQuery", func(b *testing.B) {
			q := be.q(pointSQL)
			var u User
			var idPlain, idNull, idIdmap int64
			paired(b, []side{
				{name: "plain", op: func() error {
					return be.plain.QueryRowContext(bg, q, nextID(&idPlain)).Scan(&u.ID, &u.Name, &u.Email, &u.Age, &u.CreatedAt)
				}},
				// sqlmw by itself: the floor of any driver built on it.
				{name: "sqlmwNull", op: func() error {
					return be.null.QueryRowContext(bg, q, nextID(&idNull)).Scan(&u.ID, &u.Name, &u.Email, &u.Age, &u.CreatedAt)
				}},
				{name: "idmap", op: func() error {
					return be.idm.QueryRowContext(bg, q, nextID(&idIdmap)).Scan(&u.ID, &u.Name, &u.Email, &u.Age, &u.CreatedAt)
				}},
			})
		})
		b.Run("select100", func(b *testing.B) {
			q := be.q(selectSQL)
			check := func(us []*User, err error) error {
				if err == nil && len(us) != selectLen {
					err = fmt.Errorf("got %d rows; want %d", len(us), selectLen)
				}
				return err
			}
			warm := idmap.NewContext(bg)
			paired(b, []side{
				{name: "handScan", op: func() error { return check(handScan(bg, be.plain, q, 1, selectLen)) }},
				{name: "handScanIdmap", op: func() error { return check(handScan(bg, be.idm, q, 1, selectLen)) }},
				{name: "sqlx", op: func() error {
					var us []*User
					return check(us, be.sqlx.SelectContext(bg, &us, q, 1, selectLen))
				}},
				{name: "scany", op: func() error {
					var us []*User
					return check(us, sqlscan.Select(bg, be.plain, &us, q, 1, selectLen))
				}},
				{name: "bindCold", op: func() error { return check(bind(idmap.NewContext(bg), be.idm, q)) }},
				{name: "bindWarm", op: func() error { return check(bind(warm, be.idm, q)) }},
				// The floor of any warm Bind: the rows iterated, nothing
				// scanned (plain driver).
				{name: "nextOnly", op: func() error { return check(nextOnly(bg, be.plain, q, 1, selectLen)) }},
			})
			runtime.KeepAlive(warm)
		})
	})
}

// BenchmarkPairedParallel runs BenchmarkGetParallel's shared-map Get hits
// (get), Get hits in one scope shared by the goroutines (scope)
// and BenchmarkMachineParallel's two ceilings side by side, with one
// goroutine and with two. Every side does the same work per op (2×getBatch
// units of about a Get's length, split between its goroutines) and counts
// the time of that work (runParallel), so get1-ns/op / get2-ns/op is the
// throughput that a second goroutine adds, measured through the same
// seconds as the machine's own ceilings cpu1/cpu2 and map1/map2. The
// metrics "<kind>-of-ceiling" divide a kind's gain by the read-only map's
// (map1/map2), the ceiling of work that reads shared memory, as Get does:
// the targets' "scale like the machine's own ceiling".
func BenchmarkPairedParallel(b *testing.B) {
	bg := context.Background()
	be := backendNamed("SQLiteMem")
	if err := be.open(); err != nil {
		b.Fatal(err)
	}
	idmap.Flush(bg, be.idmapName())
	all := loadAll(b, bg, be)
	m := make(map[int64]*User, nRows)
	for _, u := range all {
		m[u.ID] = u
	}
	sctx := idmap.NewContext(bg)
	scoped := loadAll(b, sctx, be)
	var sink atomic.Uint64
	var failed atomic.Bool
	gets := func(ctx context.Context, objs []*User) func(g, n int) {
		return func(g, n int) {
			id := int64(g * nRows / 2)
			for range 2 * getBatch / n {
				u, err := idmap.Get[User](ctx, be.idm, nextID(&id))
				if err != nil || u != objs[id-1] {
					failed.Store(true)
					return
				}
			}
		}
	}
	units := map[string]func(g, n int){
		"get": gets(bg, all),
		// Get hits in ONE scope that both goroutines share.
		"scope": gets(sctx, scoped),
		"cpu":   func(g, n int) { sink.Add(cpuWork(g, 2*getBatch*cpuSteps/n)) },
		"map":   func(g, n int) { sink.Add(mapWork(m, g, 2*getBatch*mapLookups/n)) },
	}
	var sides []side
	for _, kind := range []string{"get", "scope", "cpu", "map"} {
		for _, n := range []int{1, 2} {
			sides = append(sides, side{name: fmt.Sprintf("%s%d", kind, n), timed: func() (time.Duration, error) {
				d := runParallel(n, func(g int) { units[kind](g, n) })
				if failed.Load() {
					return 0, fmt.Errorf("Get missed")
				}
				return d, nil
			}})
		}
	}
	total := paired(b, sides)
	gain := func(kind string) float64 {
		return float64(total[kind+"1"]) / float64(total[kind+"2"])
	}
	for _, kind := range []string{"get", "scope", "cpu"} {
		b.ReportMetric(gain(kind)/gain("map"), kind+"-of-ceiling")
	}
	runtime.KeepAlive(all)
	runtime.KeepAlive(scoped)
}
