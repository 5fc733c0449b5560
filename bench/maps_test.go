package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/puzpuzpuz/xsync/v4"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/cache"
)

// The shared map against a plain Go map and a concurrent map, at 10^3,
// 10^5 and 10^6 entries (issue 16). Rows of three columns in SQLite in
// memory; random keys. Every figure is taken beside its references in the
// same run:
//
//	BenchmarkMapGet      Get hits: plain map[int64]*T, xsync v4 Map, a plain
//	                     map[int64]weak.Pointer[T] (the reference of any weak
//	                     map), idmap.Get in the shared map (StrongRefs and
//	                     weak) and in a scope, each side reading objects
//	                     of its own
//	BenchmarkMapMemory   heap per entry beyond the objects, and the time of a
//	                     full GC with the map held, for each of the same maps
//	BenchmarkMapBind     Bind of every row into the shared map against a
//	                     hand-written Scan loop that fills a plain map

// MapRow is a row of bench_map, in the shared map with weak references.
type MapRow struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	Age  int    `db:"age"`
}

func (MapRow) TableName() string { return "bench_map" }

// MapRowStrong is the same row, held strongly.
type MapRowStrong struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	Age  int    `db:"age"`
}

func init() { idmap.Model[MapRowStrong](idmap.Table("bench_map"), idmap.StrongRefs()) }

var mapSizes = []int{1_000, 100_000, 1_000_000}

const mapCols = "id, name, age"

var mapDB struct {
	once       sync.Once
	err        error
	plain, idm *sql.DB
	keep       *sql.Conn
}

// openMapDB fills bench_map with the largest size once.
func openMapDB(tb testing.TB) (plain, idm *sql.DB) {
	mapDB.once.Do(func() {
		ctx := context.Background()
		dsn := "file:/idmap-bench-map?vfs=memdb"
		var err error
		if mapDB.plain, err = sql.Open("sqlite3", dsn); err != nil {
			mapDB.err = err
			return
		}
		if mapDB.keep, err = mapDB.plain.Conn(ctx); err != nil {
			mapDB.err = err
			return
		}
		mapDB.err = func() error {
			for _, s := range []string{"DROP TABLE IF EXISTS bench_map", "CREATE TABLE bench_map (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER NOT NULL)"} {
				if _, err := mapDB.plain.ExecContext(ctx, s); err != nil {
					return err
				}
			}
			tx, err := mapDB.plain.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			st, err := tx.PrepareContext(ctx, "INSERT INTO bench_map (id, name, age) VALUES (?, ?, ?)")
			if err != nil {
				return err
			}
			for i := 1; i <= slices.Max(mapSizes); i++ {
				if _, err := st.ExecContext(ctx, i, fmt.Sprintf("user %07d", i), 20+i%50); err != nil {
					return err
				}
			}
			return tx.Commit()
		}()
		if mapDB.err == nil {
			mapDB.idm, mapDB.err = idmap.Open("sqlite3", dsn, idmap.Name("bench-map"))
		}
	})
	if mapDB.err != nil {
		tb.Fatal(mapDB.err)
	}
	return mapDB.plain, mapDB.idm
}

const mapQuery = "SELECT " + mapCols + " FROM bench_map WHERE id <= ?"

// scanMap is the hand-written reference: a Scan loop that fills a plain map.
func scanMap(ctx context.Context, db *sql.DB, n int) (map[int64]*MapRow, error) {
	rows, err := db.QueryContext(ctx, mapQuery, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[int64]*MapRow)
	for rows.Next() {
		u := new(MapRow)
		if err := rows.Scan(&u.ID, &u.Name, &u.Age); err != nil {
			return nil, err
		}
		m[u.ID] = u
	}
	return m, rows.Err()
}

func scanSlice(ctx context.Context, db *sql.DB, n int) ([]*MapRow, error) {
	m, err := scanMap(ctx, db, n)
	if err != nil {
		return nil, err
	}
	s := make([]*MapRow, 0, n)
	for i := range int64(n) {
		s = append(s, m[i+1])
	}
	return s, nil
}

func bindMap[T any](ctx context.Context, db *sql.DB, n int) ([]*T, error) {
	rows, err := db.QueryContext(ctx, mapQuery, n)
	if err != nil {
		return nil, err
	}
	var out []*T
	err = idmap.Bind(rows, &out)
	if err == nil && len(out) != n {
		err = fmt.Errorf("bound %d rows; want %d", len(out), n)
	}
	return out, err
}

// mapKeys are random keys in [1, n], as many as to defeat the CPU caches.
func mapKeys(n int) []int64 {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	keys := make([]int64, 1<<20)
	for i := range keys {
		keys[i] = 1 + r.Int64N(int64(n))
	}
	return keys
}

const getBatchMap = 1000

func BenchmarkMapGet(b *testing.B) {
	bg := context.Background()
	plain, idm := openMapDB(b)
	for _, n := range mapSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			idmap.Flush(bg, "bench-map")
			pm, err := scanMap(bg, plain, n)
			if err != nil {
				b.Fatal(err)
			}
			// Every side reads objects of its own, scanned or bound for it
			// alone: sides that shared objects would keep them (and their
			// spans and weak handles) warmer in the CPU's caches than a
			// side whose objects only it reads, and the plain map, whose
			// objects xsync and the map of weak.Pointers read too, would
			// be flattered against idmap's sides.
			xobjs, err := scanMap(bg, plain, n)
			if err != nil {
				b.Fatal(err)
			}
			xm := xsync.NewMap[int64, *MapRow](xsync.WithPresize(n))
			for k, v := range xobjs {
				xm.Store(k, v)
			}
			// A plain map of weak pointers: what any map of weak entries
			// pays (weak.Pointer.Value), beside which the weak shared
			// map's own cost shows. The pointers are made last first, as
			// the shared map makes them (cheaper handles for the runtime
			// to insert, same handles to read).
			wobjs, err := scanMap(bg, plain, n)
			if err != nil {
				b.Fatal(err)
			}
			wm := make(map[int64]weak.Pointer[MapRow], n)
			for k := int64(n); k >= 1; k-- {
				wm[k] = weak.Make(wobjs[k])
			}
			weakObjs, err := bindMap[MapRow](bg, idm, n)
			if err != nil {
				b.Fatal(err)
			}
			strongObjs, err := bindMap[MapRowStrong](bg, idm, n)
			if err != nil {
				b.Fatal(err)
			}
			sctx := idmap.NewContext(bg)
			scopeObjs, err := bindMap[MapRow](sctx, idm, n)
			if err != nil {
				b.Fatal(err)
			}
			keys := mapKeys(n)
			var failed error
			at := make(map[string]int) // each side's position in keys
			batch := func(name string, get func(k int64) bool) side {
				return side{name: name, op: func() error {
					i := at[name]
					for range getBatchMap {
						if !get(keys[i]) {
							return fmt.Errorf("%s: key %d missed", name, keys[i])
						}
						i = (i + 1) & (len(keys) - 1)
					}
					at[name] = i
					return failed
				}}
			}
			sides := []side{
				// Every side reads the object's key, as the Get sides check it.
				batch("plain", func(k int64) bool { return pm[k].ID == k }),
				batch("xsync", func(k int64) bool { v, _ := xm.Load(k); return v.ID == k }),
				batch("weakMap", func(k int64) bool { v := wm[k].Value(); return v != nil && v.ID == k }),
				batch("getStrong", func(k int64) bool { u, err := idmap.Get[MapRowStrong](bg, idm, k); return err == nil && u.ID == k }),
				batch("getWeak", func(k int64) bool { u, err := idmap.Get[MapRow](bg, idm, k); return err == nil && u.ID == k }),
				batch("getScope", func(k int64) bool { u, err := idmap.Get[MapRow](sctx, idm, k); return err == nil && u.ID == k }),
			}
			// Each side starts its walk of keys at a place of its own, so
			// that no batch follows another over the same keys (when
			// xsync and the map of weak.Pointers read the plain map's
			// objects, in step they found in the CPU's caches what the
			// side before had just read).
			for i, s := range sides {
				at[s.name] = i * len(keys) / len(sides)
			}
			pairedCPU(b, sides, getBatchMap)
			runtime.KeepAlive(wobjs) // wm's objects
			runtime.KeepAlive(weakObjs)
			runtime.KeepAlive(strongObjs)
			runtime.KeepAlive(scopeObjs)
		})
	}
}

// BenchmarkScopeGet: Get hits in a scope of 10^3 entries, and the scope's
// map alone (cache.Scope.Lookup) with integer and string keys, beside a
// plain map of the same keys, in batches of 1,000 lookups run side by side
// (wall and thread CPU time per lookup). The cache package's
// TestScopeLookupAllocs checks the allocations.
func BenchmarkScopeGet(b *testing.B) {
	bg := context.Background()
	_, idm := openMapDB(b)
	const n = 1000
	ctx := idmap.NewContext(bg)
	if _, err := bindMap[MapRow](ctx, idm, n); err != nil {
		b.Fatal(err)
	}
	keys := mapKeys(n)
	s, d, ti, ts, skeys, objs := scopeOfKeys(n)
	// Keys boxed beforehand: what is measured is the map, not the
	// caller's conversion to an interface.
	ikeys := make([]any, len(keys))
	sboxed := make([]any, len(keys))
	for i, k := range keys {
		ikeys[i], sboxed[i] = k, skeys[k-1]
	}
	m := make(map[int64]*MapRow, n)
	for i := range objs {
		m[objs[i].ID] = &objs[i]
	}
	at := map[string]int{}
	batch := func(name string, hit func(i int) bool) side {
		return side{name: name, op: func() error {
			i := at[name]
			for range getBatchMap {
				if !hit(i) {
					return fmt.Errorf("%s: miss at %d", name, i)
				}
				i = (i + 1) & (len(keys) - 1)
			}
			at[name] = i
			return nil
		}}
	}
	pairedCPU(b, []side{
		batch("get", func(i int) bool { u, err := idmap.Get[MapRow](ctx, idm, keys[i]); return err == nil && u.ID == keys[i] }),
		batch("lookupInt", func(i int) bool {
			p, st := s.Lookup(d, ti, ikeys[i])
			return st == cache.Fresh && p.(*MapRow).ID == keys[i]
		}),
		batch("lookupString", func(i int) bool {
			p, st := s.Lookup(d, ts, sboxed[i])
			return st == cache.Fresh && p.(*MapRow).ID == keys[i]
		}),
		batch("plainMap", func(i int) bool { return m[keys[i]].ID == keys[i] }),
	}, getBatchMap)
	runtime.KeepAlive(objs)
}

// scopeOfKeys is a scope holding n objects under int64 keys (type ti) and
// under string keys (type ts).
func scopeOfKeys(n int) (s *cache.Scope, d *cache.DB, ti, ts *cache.Type, skeys []string, objs []MapRow) {
	s = cache.NewScope()
	d = cache.NewDB("bench-scope-lookup")
	ti = &cache.Type{Name: "int", Table: "t"}
	ts = &cache.Type{Name: "str", Table: "t"}
	objs = make([]MapRow, n)
	skeys = make([]string, n)
	for i := range objs {
		objs[i].ID = int64(i + 1)
		skeys[i] = fmt.Sprintf("key-%06d", i+1)
		s.In(d).Put(ti, &cache.Load{Key: int64(i + 1), Obj: &objs[i], Epoch: d.Now()}, nil)
		s.In(d).Put(ts, &cache.Load{Key: skeys[i], Obj: &objs[i], Epoch: d.Now()}, nil)
	}
	return
}

// memVariant is one way to hold n rows' objects: build returns what keeps
// them (the objects are also held in a slice by every variant, so that
// only the structure differs).
type memVariant struct {
	name  string
	build func(ctx context.Context, n int) (any, error)
	drop  func()
}

// gcTime is the median wall time and process CPU time of a full GC, of 5.
// The process does nothing else meanwhile, so its CPU time is the
// collector's work, whatever else the machine runs.
func gcTime() (wall, cpu time.Duration) {
	var ws, cs []time.Duration
	for range 5 {
		c0, t0 := processCPU(), time.Now()
		runtime.GC()
		ws = append(ws, time.Since(t0))
		cs = append(cs, processCPU()-c0)
	}
	slices.Sort(ws)
	slices.Sort(cs)
	return ws[len(ws)/2], cs[len(cs)/2]
}

// processCPU returns the CPU time of the whole process
// (CLOCK_PROCESS_CPUTIME_ID): the collector's workers included.
func processCPU() time.Duration {
	var ts syscall.Timespec
	const clockProcessCPUTime = 2 // CLOCK_PROCESS_CPUTIME_ID (Linux)
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// BenchmarkMapMemory: for each size, the heap per entry beyond the objects
// (B/entry-<variant>) and the time of a full GC with the map held
// (gc-ms-<variant> wall, gc-cpu-ms-<variant> CPU of the process), for a plain map, xsync v4, and idmap's shared map
// (strong and weak). Each variant is built alone and dropped before the
// next; "objects" is the objects alone, held by a slice, which every
// variant holds too.
func BenchmarkMapMemory(b *testing.B) {
	bg := context.Background()
	plain, idm := openMapDB(b)
	for _, n := range mapSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			variants := []memVariant{
				{"objects", func(ctx context.Context, n int) (any, error) { return scanSlice(ctx, plain, n) }, nil},
				{"plain", func(ctx context.Context, n int) (any, error) {
					s, err := scanSlice(ctx, plain, n)
					m := make(map[int64]*MapRow)
					for _, u := range s {
						m[u.ID] = u
					}
					return []any{s, m}, err
				}, nil},
				{"xsync", func(ctx context.Context, n int) (any, error) {
					s, err := scanSlice(ctx, plain, n)
					m := xsync.NewMap[int64, *MapRow]()
					for _, u := range s {
						m.Store(u.ID, u)
					}
					return []any{s, m}, err
				}, nil},
				{"idmapStrong", func(ctx context.Context, n int) (any, error) { return bindMap[MapRowStrong](ctx, idm, n) },
					func() { idmap.Flush(bg, "bench-map") }},
				{"idmapWeak", func(ctx context.Context, n int) (any, error) { return bindMap[MapRow](ctx, idm, n) },
					func() { idmap.Flush(bg, "bench-map") }},
			}
			heap := map[string]float64{}
			gc := map[string]time.Duration{}
			gcCPU := map[string]time.Duration{}
			for b.Loop() {
				for _, v := range variants {
					idmap.Flush(bg, "bench-map")
					h0 := heapAfterGC()
					held, err := v.build(bg, n)
					if err != nil {
						b.Fatal(err)
					}
					h1 := heapAfterGC()
					gc[v.name], gcCPU[v.name] = gcTime()
					heap[v.name] = float64(h1) - float64(h0)
					runtime.KeepAlive(held)
					held = nil
					if v.drop != nil {
						v.drop()
					}
				}
			}
			for _, v := range variants {
				if v.name != "objects" {
					b.ReportMetric((heap[v.name]-heap["objects"])/float64(n), "B/entry-"+v.name)
				}
				b.ReportMetric(float64(gc[v.name].Microseconds())/1000, "gc-ms-"+v.name)
				b.ReportMetric(float64(gcCPU[v.name].Microseconds())/1000, "gc-cpu-ms-"+v.name)
			}
			b.ReportMetric(heap["objects"]/float64(n), "B/object")
		})
	}
}

// BenchmarkMapBind: Bind of every row of bench_map (10^6) into the shared
// map, strong and weak, each after a flush, against a hand-written Scan
// loop that fills a plain map; the sides take turns, each timed alone, and
// each side's mean is a metric <side>-ns/op.
func BenchmarkMapBind(b *testing.B) {
	bg := context.Background()
	plain, idm := openMapDB(b)
	n := slices.Max(mapSizes)
	sides := []struct {
		name string
		op   func() (any, error)
	}{
		{"handScanMap", func() (any, error) { return scanMap(bg, plain, n) }},
		{"bindStrong", func() (any, error) { return bindMap[MapRowStrong](bg, idm, n) }},
		{"bindWeak", func() (any, error) { return bindMap[MapRow](bg, idm, n) }},
	}
	total := make([]time.Duration, len(sides))
	rounds := 0
	for b.Loop() {
		for j := range sides {
			k := (j + rounds) % len(sides)
			idmap.Flush(bg, "bench-map")
			runtime.GC()
			t0 := time.Now()
			held, err := sides[k].op()
			total[k] += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			runtime.KeepAlive(held)
		}
		rounds++
	}
	for k, s := range sides {
		b.ReportMetric(float64(total[k].Nanoseconds())/float64(rounds), s.name+"-ns/op")
	}
}

// threadCPU returns the CPU time the calling thread has used
// (CLOCK_THREAD_CPUTIME_ID, to the nanosecond). On a machine shared with
// other work, a benchmark's wall time counts the time its thread waited for
// a core; its thread's CPU time does not.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID (Linux)
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// pairedCPU is paired for sides of one goroutine each doing per units of
// work per op: it reports each side's mean wall time and thread CPU time
// per unit, as "<side>-ns" and "<side>-cpu-ns".
func pairedCPU(b *testing.B, sides []side, per int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, s := range sides {
		if err := s.op(); err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
	}
	// A full collection before the timed loop: the setup's garbage (10^6
	// rows scanned and bound three or four times) would otherwise be
	// collected during it, and while the collector marks, every
	// weak.Pointer.Value shades its object, which weighs on the weak
	// sides alone.
	runtime.GC()
	wall := make([]time.Duration, len(sides))
	cpu := make([]time.Duration, len(sides))
	n := 0
	for b.Loop() {
		for j := range sides {
			k := (j + n) % len(sides)
			c0, t0 := threadCPU(), time.Now()
			if err := sides[k].op(); err != nil {
				b.Fatalf("%s: %v", sides[k].name, err)
			}
			wall[k] += time.Since(t0)
			cpu[k] += threadCPU() - c0
		}
		n++
	}
	for k, s := range sides {
		b.ReportMetric(float64(wall[k].Nanoseconds())/float64(n*per), s.name+"-ns")
		b.ReportMetric(float64(cpu[k].Nanoseconds())/float64(n*per), s.name+"-cpu-ns")
	}
}
