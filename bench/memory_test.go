package bench

import (
	"context"
	"database/sql"
	"runtime"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
)

// MemUser is User on a table of its own, bench_mem, big enough to measure
// what a weak entry of the shared map costs.
type MemUser struct {
	ID        int64     `db:"id"`
	Name      string    `db:"name"`
	Email     string    `db:"email"`
	Age       int       `db:"age"`
	CreatedAt time.Time `db:"created_at"`
}

func (MemUser) TableName() string { return "bench_mem" }

// memResult is what measureSharedMemory found.
type memResult struct {
	n           int
	perEntry    float64 // heap bytes per entry beyond the objects themselves
	perObject   float64 // heap bytes per object (what a plain scan keeps)
	left        int     // entries not swept after the objects were dropped
	heldAfter   float64 // heap bytes per entry still held after the release
	rounds      int     // GC rounds until every entry was gone
	sweptBefore uint64
}

// fillMem (re)creates bench_mem with n rows in be (SQLite).
func fillMem(ctx context.Context, be *backend, n int) error {
	for _, s := range []string{
		"DROP TABLE IF EXISTS bench_mem",
		"CREATE TABLE bench_mem (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128) NOT NULL, age INT NOT NULL, created_at DATETIME NOT NULL)",
	} {
		if _, err := be.plain.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	tx, err := be.plain.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, "INSERT INTO bench_mem ("+cols+") VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		u := sampleUser(int64(i))
		if _, err := st.ExecContext(ctx, u.ID, u.Name, u.Email, u.Age, u.CreatedAt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// weakReleased returns how many weak entries of db's shared maps the
// sweeps have removed so far.
func weakReleased(tb testing.TB, db *sql.DB) uint64 {
	st, ok := idmap.StatsOf(db)
	if !ok {
		tb.Fatal("StatsOf: not an idmap database")
	}
	return st.WeakReleased
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// measureSharedMemory binds n rows into the shared map (weak entries) and
// scans the same n rows by hand: the difference of the two heaps is what the
// entries cost. Then it drops every object and counts, through the
// database's statistics (Stats.WeakReleased), the entries removed.
func measureSharedMemory(tb testing.TB, n int) memResult {
	ctx := context.Background()
	be := backendNamed("SQLiteMem")
	if err := be.open(); err != nil {
		tb.Fatal(err)
	}
	if err := fillMem(ctx, be, n); err != nil {
		tb.Fatal(err)
	}
	q := "SELECT " + cols + " FROM bench_mem"
	// Warm up: the model, the statement's classification, the pools.
	warm := func(db *sql.DB) {
		rows, err := db.QueryContext(ctx, q+" WHERE id = 1")
		if err != nil {
			tb.Fatal(err)
		}
		var us []*MemUser
		if err := idmap.Bind(rows, &us); err != nil {
			tb.Fatal(err)
		}
	}
	warm(be.idm)
	idmap.FlushType[MemUser](ctx, be.idmapName())

	r := memResult{n: n}
	runtime.GC()
	freed0 := weakReleased(tb, be.idm)
	r.sweptBefore = freed0
	h0 := heapAfterGC()

	rows, err := be.idm.QueryContext(ctx, q)
	if err != nil {
		tb.Fatal(err)
	}
	var bound []*MemUser
	if err := idmap.Bind(rows, &bound); err != nil {
		tb.Fatal(err)
	}
	if len(bound) != n {
		tb.Fatalf("bound %d rows; want %d", len(bound), n)
	}
	h1 := heapAfterGC()

	// The same objects, scanned by hand: what they weigh without idmap.
	prows, err := be.plain.QueryContext(ctx, q)
	if err != nil {
		tb.Fatal(err)
	}
	scanned := make([]*MemUser, 0, n)
	for prows.Next() {
		u := new(MemUser)
		if err := prows.Scan(&u.ID, &u.Name, &u.Email, &u.Age, &u.CreatedAt); err != nil {
			tb.Fatal(err)
		}
		scanned = append(scanned, u)
	}
	if err := prows.Close(); err != nil {
		tb.Fatal(err)
	}
	h2 := heapAfterGC()

	// Every entry is there and serves its object.
	for _, k := range []int{0, n / 2, n - 1} {
		if c := idmap.Cached[MemUser](ctx, be.idm, k+1); c != bound[k] {
			tb.Fatalf("Cached(%d) = %p; want the bound object %p", k+1, c, bound[k])
		}
	}
	r.perObject = float64(h2-h1) / float64(n)
	r.perEntry = (float64(h1) - float64(h0) - float64(h2-h1)) / float64(n)
	runtime.KeepAlive(bound)
	runtime.KeepAlive(scanned)
	bound, scanned = nil, nil

	// Drop the objects: the entries must go, and their memory with them.
	freed := uint64(0)
	for r.rounds = 1; r.rounds <= 20; r.rounds++ {
		runtime.GC()
		// A collection starts a sweep of its own, in the background: give
		// it a moment to end.
		for range 100 {
			if freed = weakReleased(tb, be.idm) - freed0; freed >= uint64(n) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if freed >= uint64(n) {
			break
		}
	}
	r.left = n - int(min(freed, uint64(n)))
	r.heldAfter = (float64(heapAfterGC()) - float64(h0)) / float64(n)
	return r
}

// BenchmarkSharedMemory reports what a weak entry of the shared map costs
// (B/entry, beyond the objects themselves; target ≤ 160) and what is left
// once the objects are dropped (entries-left, B/entry-after: both ~0). The
// measurement runs once; the timed loop is empty.
func BenchmarkSharedMemory(b *testing.B) {
	r := measureSharedMemory(b, 100_000)
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r.perEntry, "B/entry")
	b.ReportMetric(r.perObject, "B/object")
	b.ReportMetric(float64(r.left), "entries-left")
	b.ReportMetric(r.heldAfter, "B/entry-after")
	b.Logf("%d weak entries: %.0f B/entry beyond the objects (%.0f B/object); after the release: %d entries left, %.1f B/entry held, %d GC rounds",
		r.n, r.perEntry, r.perObject, r.left, r.heldAfter, r.rounds)
}

// TestSharedMemoryReleased: weak entries made by Bind go once their objects
// are unreachable (a small run of the measurement above).
func TestSharedMemoryReleased(t *testing.T) {
	r := measureSharedMemory(t, 5_000)
	t.Logf("%d weak entries: %.0f B/entry beyond the objects; %d left after the release (%d rounds)", r.n, r.perEntry, r.left, r.rounds)
	if r.left != 0 {
		t.Errorf("%d of %d entries left after their objects became unreachable", r.left, r.n)
	}
}
