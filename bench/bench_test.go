package bench

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/georgysavva/scany/v2/sqlscan"

	"github.com/go-idmap/idmap"
)

// Benchmark names read as BenchmarkWhat/Backend/how: the ratios that
// cmd/ratios prints divide one "how" by another on the same backend.

var (
	pointSQL  = "SELECT " + cols + " FROM bench_users WHERE id = ?"
	selectSQL = "SELECT " + cols + " FROM bench_users WHERE id BETWEEN ? AND ? ORDER BY id"
)

// nextID cycles through every row, the same sequence for each benchmark.
func nextID(i *int64) int64 {
	*i = *i%nRows + 1
	return *i
}

// BenchmarkPointQuery: one row by primary key, QueryRow + Scan, through the
// plain driver and through idmap's driver (the wrapper's overhead).
func BenchmarkPointQuery(b *testing.B) {
	ctx := context.Background()
	forEach(b, func(b *testing.B, be *backend) {
		q := be.q(pointSQL)
		for _, c := range []struct {
			name string
			db   *sql.DB
		}{{"plain", be.plain}, {"sqlmwNull", be.null}, {"idmap", be.idm}} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				var id int64
				var u User
				for b.Loop() {
					if err := c.db.QueryRowContext(ctx, q, nextID(&id)).Scan(&u.ID, &u.Name, &u.Email, &u.Age, &u.CreatedAt); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// handScan is what idmap's users would write without it.
func handScan(ctx context.Context, db *sql.DB, q string, args ...any) ([]*User, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u := new(User)
		if err := rows.Scan(&u.ID, &u.Name, &u.Email, &u.Age, &u.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// nextOnly iterates the rows without scanning them: the floor under a warm
// Bind, which still receives every row but scans none.
func nextOnly(ctx context.Context, db *sql.DB, q string, args ...any) ([]*User, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		out = append(out, nil)
	}
	return out, rows.Err()
}

// bind runs the query on db with ctx and binds the rows.
func bind(ctx context.Context, db *sql.DB, q string) ([]*User, error) {
	rows, err := db.QueryContext(ctx, q, 1, selectLen)
	if err != nil {
		return nil, err
	}
	var out []*User
	err = idmap.Bind(rows, &out)
	return out, err
}

// BenchmarkSelect100: a query of 100 rows into []*User, each way.
//
//	handScan       plain driver, hand-written rows.Scan loop (the reference)
//	handScanIdmap  the same loop through idmap's driver
//	sqlx           sqlx Select, plain driver
//	scany          scany sqlscan.Select, plain driver
//	bindCold       idmap.Bind in a new scope each iteration (every row new)
//	bindWarm       idmap.Bind in one scope whose rows are canonical and fresh
//	bindSharedCold idmap.Bind into the shared map (weak), flushed each iteration
//	bindSharedWarm idmap.Bind into the shared map, its objects kept alive
func BenchmarkSelect100(b *testing.B) {
	bg := context.Background()
	forEach(b, func(b *testing.B, be *backend) {
		q := be.q(selectSQL)
		check := func(b *testing.B, us []*User, err error) {
			if err != nil {
				b.Fatal(err)
			}
			if len(us) != selectLen {
				b.Fatalf("got %d rows; want %d", len(us), selectLen)
			}
		}
		b.Run("handScan", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				us, err := handScan(bg, be.plain, q, 1, selectLen)
				check(b, us, err)
			}
		})
		b.Run("handScanIdmap", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				us, err := handScan(bg, be.idm, q, 1, selectLen)
				check(b, us, err)
			}
		})
		b.Run("sqlx", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var us []*User
				err := be.sqlx.SelectContext(bg, &us, q, 1, selectLen)
				check(b, us, err)
			}
		})
		b.Run("scany", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var us []*User
				err := sqlscan.Select(bg, be.plain, &us, q, 1, selectLen)
				check(b, us, err)
			}
		})
		b.Run("bindCold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				us, err := bind(idmap.NewContext(bg), be.idm, q)
				check(b, us, err)
			}
		})
		b.Run("bindWarm", func(b *testing.B) {
			ctx := idmap.NewContext(bg)
			first, err := bind(ctx, be.idm, q)
			check(b, first, err)
			b.ReportAllocs()
			for b.Loop() {
				us, err := bind(ctx, be.idm, q)
				check(b, us, err)
				if us[0] != first[0] {
					b.Fatal("warm Bind returned a new object")
				}
			}
		})
		b.Run("bindSharedCold", func(b *testing.B) {
			name := be.idmapName()
			b.ReportAllocs()
			for b.Loop() {
				idmap.Flush(bg, name)
				us, err := bind(bg, be.idm, q)
				check(b, us, err)
			}
		})
		b.Run("bindSharedWarm", func(b *testing.B) {
			idmap.Flush(bg, be.idmapName())
			first, err := bind(bg, be.idm, q)
			check(b, first, err)
			b.ReportAllocs()
			for b.Loop() {
				us, err := bind(bg, be.idm, q)
				check(b, us, err)
				if us[0] != first[0] {
					b.Fatal("warm shared Bind returned a new object")
				}
			}
			runtime.KeepAlive(first)
		})
	})
}

// loadAll binds every row of bench_users with ctx.
func loadAll(tb testing.TB, ctx context.Context, be *backend) []*User {
	tb.Helper()
	rows, err := be.idm.QueryContext(ctx, "SELECT "+cols+" FROM bench_users")
	if err != nil {
		tb.Fatal(err)
	}
	var all []*User
	if err := idmap.Bind(rows, &all); err != nil {
		tb.Fatal(err)
	}
	if len(all) != nRows {
		tb.Fatalf("loaded %d rows; want %d", len(all), nRows)
	}
	return all
}

// BenchmarkGet: idmap.Get by primary key, cycling through every row.
//
//	hitScope   every row loaded in the scope: no query
//	hitShared  every row loaded in the shared map and kept alive: no query
//	missScope  a new scope each iteration: one query and a one-row Bind
//
// BenchmarkGetConcurrentMiss: 8 goroutines Get one key that no map holds.
// sameScope: they share a new scope each iteration, and idmap loads the key
// once while the others wait; ownScopes: each has a scope of its own, so
// each sends a query. The ratio is what loading once saves. shared: the
// shared map, flushed before each iteration; sameTx: one transaction.
func BenchmarkGetConcurrentMiss(b *testing.B) {
	bg := context.Background()
	forEach(b, func(b *testing.B, be *backend) {
		b.Run("shared", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				idmap.FlushType[User](bg, idmap.NameOf(be.idm))
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						if _, err := idmap.Get[User](bg, be.idm, 42); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
		})
		b.Run("sameTx", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tx, err := be.idm.BeginTx(bg, &sql.TxOptions{ReadOnly: false})
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						if _, err := idmap.Get[User](bg, tx, 42); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				if err := tx.Rollback(); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, shared := range []bool{true, false} {
			name := "ownScopes"
			if shared {
				name = "sameScope"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ctx := idmap.NewContext(bg)
					var wg sync.WaitGroup
					for range 8 {
						wg.Go(func() {
							c := ctx
							if !shared {
								c = idmap.NewContext(bg)
							}
							if _, err := idmap.Get[User](c, be.idm, 42); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
				}
			})
		}
	})
}

func BenchmarkGet(b *testing.B) {
	bg := context.Background()
	forEach(b, func(b *testing.B, be *backend) {
		b.Run("hitScope", func(b *testing.B) {
			ctx := idmap.NewContext(bg)
			all := loadAll(b, ctx, be)
			b.ReportAllocs()
			var id int64
			for b.Loop() {
				u, err := idmap.Get[User](ctx, be.idm, nextID(&id))
				if err != nil || u != all[id-1] {
					b.Fatalf("Get(%d): %p, %v; want %p", id, u, err, all[id-1])
				}
			}
		})
		b.Run("hitShared", func(b *testing.B) {
			idmap.Flush(bg, be.idmapName())
			all := loadAll(b, bg, be)
			b.ReportAllocs()
			var id int64
			for b.Loop() {
				u, err := idmap.Get[User](bg, be.idm, nextID(&id))
				if err != nil || u != all[id-1] {
					b.Fatalf("Get(%d): %p, %v; want %p", id, u, err, all[id-1])
				}
			}
			runtime.KeepAlive(all)
		})
		b.Run("missScope", func(b *testing.B) {
			b.ReportAllocs()
			var id int64
			for b.Loop() {
				u, err := idmap.Get[User](idmap.NewContext(bg), be.idm, nextID(&id))
				if err != nil || u.ID != id {
					b.Fatalf("Get(%d): %v, %v", id, u, err)
				}
			}
		})
	})
}

// getBatch is how many Gets each goroutine makes per iteration of
// BenchmarkGetParallel: 10,000 hits, about 0.2 ms.
const getBatch = 10000

// Units of the ceilings' work, each about as long as a Get hit of
// BenchmarkGetParallel (18-19 ns here): cpuSteps xorshift steps, mapLookups
// lookups in a plain map. The sides of a comparison then run equally long.
const (
	cpuSteps   = 10
	mapLookups = 2
)

// runParallel runs work(g) for g in [0, n) on n goroutines at once and
// returns the time from the moment the last of them was running to the
// moment the last returned. Each goroutine waits, spinning, until all have
// arrived before it starts its work, so what the time leaves out is the
// starting of the goroutines: waking the thread of an idle P cost 40-150 µs
// here (a virtual machine's idle CPU), once per iteration, a fixed cost
// that weighed most on the shortest of the sides compared, and moved the
// ratios with the sides' lengths: timed whole, sides of equal length
// scaled 1.51-1.77×, the same work timed from the meeting 1.89-2.02×,
// alike for Get hits, arithmetic and map reads
// (bench/testdata/paired-parallel-rendezvous.txt). With fewer Ps than
// goroutines, a waiting goroutine yields its P.
func runParallel(n int, work func(g int)) time.Duration {
	var wg sync.WaitGroup
	var arrived atomic.Int32
	yield := runtime.GOMAXPROCS(0) < n
	base := time.Now()
	starts, ends := make([]time.Duration, n), make([]time.Duration, n)
	for g := range n {
		wg.Go(func() {
			arrived.Add(1)
			for arrived.Load() < int32(n) {
				if yield {
					runtime.Gosched()
				}
			}
			starts[g] = time.Since(base)
			work(g)
			ends[g] = time.Since(base)
		})
	}
	wg.Wait()
	return slices.Max(ends) - slices.Min(starts)
}

// BenchmarkGetParallel: Get hits by 1 and by 2 goroutines at once, each
// making getBatch Gets per iteration; "ns/get" is the time of their work
// (runParallel) per Get of all goroutines together, so
// throughput(2)/throughput(1) = ns/get(shared1) / ns/get(shared2). The
// scope variants share one scope, as a handler that fans out does. Hits
// send no query: SQLite in memory stands for every backend.
// BenchmarkMachineParallel is the ceiling of BenchmarkGetParallel on this
// machine: the same goroutines doing work that touches no shared memory
// (cpu: a xorshift loop) or that only reads shared memory nobody writes
// (map: lookups in a plain Go map of nRows entries, built once), getBatch
// units of about a Get's length each (cpuSteps, mapLookups). Their
// throughput(2)/throughput(1) is what two goroutines can gain here at best,
// for arithmetic and for reads of memory.
func BenchmarkMachineParallel(b *testing.B) {
	m := make(map[int64]*User, nRows)
	for i := range int64(nRows) {
		m[i+1] = &User{ID: i + 1}
	}
	var sink atomic.Uint64
	work := map[string]func(g int){
		"cpu": func(g int) { sink.Add(cpuWork(g, getBatch*cpuSteps)) },
		"map": func(g int) { sink.Add(mapWork(m, g, getBatch*mapLookups)) },
	}
	for _, kind := range []string{"cpu", "map"} {
		for _, n := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s%d", kind, n), func(b *testing.B) {
				var worked time.Duration
				for b.Loop() {
					worked += runParallel(n, work[kind])
				}
				b.ReportMetric(float64(worked.Nanoseconds())/float64(b.N*n*getBatch), "ns/get")
			})
		}
	}
}

// cpuWork is n steps of a xorshift generator: arithmetic that touches no
// memory, for goroutine g.
func cpuWork(g, n int) uint64 {
	x := uint64(g + 1)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// mapWork is n lookups in m, a plain map nobody writes, cycling through the
// keys from goroutine g's own starting point.
func mapWork(m map[int64]*User, g, n int) uint64 {
	id := int64(g * nRows / 2)
	var s uint64
	for range n {
		s += uint64(m[nextID(&id)].ID)
	}
	return s
}

func BenchmarkGetParallel(b *testing.B) {
	bg := context.Background()
	be := backendNamed("SQLiteMem")
	b.Run(be.name, func(b *testing.B) {
		if err := be.open(); err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			scoped bool
			n      int
		}{{"shared1", false, 1}, {"shared2", false, 2}, {"scope1", true, 1}, {"scope2", true, 2}} {
			b.Run(c.name, func(b *testing.B) {
				ctx := bg
				if c.scoped {
					ctx = idmap.NewContext(bg)
				} else {
					idmap.Flush(bg, be.idmapName())
				}
				all := loadAll(b, ctx, be)
				var failed sync.Once
				fail := func(err string) { failed.Do(func() { b.Error(err) }) }
				b.ReportAllocs()
				var worked time.Duration
				for b.Loop() {
					worked += runParallel(c.n, func(g int) {
						id := int64(g * nRows / 2)
						for range getBatch {
							u, err := idmap.Get[User](ctx, be.idm, nextID(&id))
							if err != nil || u != all[id-1] {
								fail("Get missed")
								return
							}
						}
					})
				}
				b.ReportMetric(float64(worked.Nanoseconds())/float64(b.N*c.n*getBatch), "ns/get")
				runtime.KeepAlive(all)
			})
		}
	})
}
