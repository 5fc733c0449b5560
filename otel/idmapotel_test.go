package idmapotel_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	idmapotel "github.com/go-idmap/idmap/otel"
)

// Item is mapped by its TableName method.
type Item struct {
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
}

func (Item) TableName() string { return "items" }

const testDB = "otel-test"

// point is one data point: its metric, value and attributes.
type point struct {
	metric string
	kind   string // "sum", "gauge"
	mono   bool   // a monotonic sum
	attrs  attribute.Set
	value  int64
	float  float64 // the value of a float64 gauge
}

// key names a point by its metric and attributes, db.name left out:
// "idmap.hits{map=shared}".
func (p point) key() string {
	var kv []string
	for _, a := range p.attrs.ToSlice() {
		if a.Key != idmapotel.DBNameKey {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
	}
	return p.metric + "{" + strings.Join(kv, ",") + "}"
}

// collect collects reader and returns the points of the scope named scope.
func collect(t *testing.T, r sdkmetric.Reader, scope string) []point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	var out []point
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != scope {
			continue
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out = append(out, point{metric: m.Name, kind: "sum", mono: d.IsMonotonic, attrs: dp.Attributes, value: dp.Value})
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					out = append(out, point{metric: m.Name, kind: "gauge", attrs: dp.Attributes, value: dp.Value})
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					out = append(out, point{metric: m.Name, kind: "gauge", attrs: dp.Attributes, float: dp.Value})
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// valuesOf returns the values of db's points by key.
func valuesOf(t *testing.T, points []point, db string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, p := range points {
		if v, _ := p.attrs.Value(idmapotel.DBNameKey); v.AsString() != db {
			continue
		}
		if _, dup := out[p.key()]; dup {
			t.Errorf("%s: two points for db %q", p.key(), db)
		}
		out[p.key()] = p.value
	}
	return out
}

func openTestDB(t *testing.T, dsn, name string) *sql.DB {
	t.Helper()
	db, err := idmap.Open("sqlite3", dsn, idmap.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // one connection keeps the in-memory database alive
	return db
}

func newReader(t *testing.T) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return r, mp
}

// newRegistered returns a reader of a meter provider that idmapotel is
// registered with until the test ends.
func newRegistered(t *testing.T) *sdkmetric.ManualReader {
	t.Helper()
	reader, mp := newReader(t)
	reg, err := idmapotel.Register(mp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Unregister() })
	return reader
}

// every instrument with its kind ("counter": a monotonic sum), unit and the
// attribute keys of its points besides db.name.
var instruments = map[string]struct {
	kind, unit string
	keys       []string
}{
	"idmap.hits":          {"counter", "{hit}", []string{"map"}},
	"idmap.misses":        {"counter", "{miss}", []string{"map"}},
	"idmap.refreshes":     {"counter", "{refresh}", []string{"map"}},
	"idmap.expiries":      {"counter", "{expiry}", []string{"cause"}},
	"idmap.flushes":       {"counter", "{flush}", []string{"reason"}},
	"idmap.weak.released": {"counter", "{entry}", nil},
	"idmap.evicted":       {"counter", "{entry}", nil},
	"idmap.bus.published": {"counter", "{message}", nil},
	"idmap.bus.received":  {"counter", "{message}", nil},
	"idmap.bus.gaps":      {"counter", "{gap}", []string{"cause"}},
	"idmap.bus.errors":    {"counter", "{error}", nil},
	"idmap.entries":       {"updowncounter", "{entry}", []string{"map"}},
	"idmap.bus.listening": {"gauge", "1", nil},

	"idmap.bus.keys.published": {"counter", "{key}", nil},
	"idmap.bus.keys.received":  {"counter", "{key}", nil},
	"idmap.bus.lease.expiries": {"counter", "{expiry}", nil},
	"idmap.bus.probes":         {"counter", "{probe}", nil},
	"idmap.bus.dropped":        {"counter", "{message}", []string{"cause"}},
	"idmap.bus.ready":          {"gauge", "1", nil},
	"idmap.bus.lease.duration": {"gauge", "s", nil},
	"idmap.bus.proof.age":      {"gauge", "s", nil},
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reader := newRegistered(t)

	db := openTestDB(t, "file:otel_test?mode=memory&cache=shared", testDB)
	if _, err := db.ExecContext(ctx, `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')`); err != nil {
		t.Fatal(err)
	}
	// Counters count from the start of the process: the test compares two
	// collections, so that it passes with -count=N.
	before := valuesOf(t, collect(t, reader, idmapotel.ScopeName), testDB)

	rows, err := db.QueryContext(ctx, `SELECT id, name FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var items []*Item
	if err := idmap.Bind(rows, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("Bind: %d items, want 3", len(items))
	}
	for _, id := range []int64{1, 2} {
		got, err := idmap.Get[Item](ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		if got != items[id-1] {
			t.Errorf("Get(%d) = %p, want the bound object %p", id, got, items[id-1])
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE items SET name = 'z' WHERE id = ?`, 1); err != nil {
		t.Fatal(err)
	}
	// A scope: its first Get misses, its second hits.
	sctx := idmap.NewContext(ctx)
	for range 2 {
		if _, err := idmap.Get[Item](sctx, db, int64(3)); err != nil {
			t.Fatal(err)
		}
	}

	points := collect(t, reader, idmapotel.ScopeName)
	after := valuesOf(t, points, testDB)
	runtime.KeepAlive(items) // the shared map holds objects weakly

	delta := func(k string) int64 { return after[k] - before[k] }
	for k, want := range map[string]int64{
		"idmap.misses{map=shared}":     3, // the rows bound
		"idmap.hits{map=shared}":       2, // the Gets
		"idmap.refreshes{map=shared}":  0,
		"idmap.misses{map=scopes}":     1, // the scope's first Get
		"idmap.hits{map=scopes}":       1, // its second
		"idmap.expiries{cause=keys}":   1, // the UPDATE
		"idmap.expiries{cause=remote}": 0,
		"idmap.flushes{reason=manual}": 0,
	} {
		if _, ok := after[k]; !ok {
			t.Errorf("%s: no point for db %q", k, testDB)
		} else if got := delta(k); got != want {
			t.Errorf("%s rose by %d, want %d", k, got, want)
		}
	}
	for k, want := range map[string]int64{
		"idmap.entries{map=shared}": 3,
		"idmap.entries{map=scopes}": 1, // the scope's object
		"idmap.bus.listening{}":     0,
	} {
		if got, ok := after[k]; !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", k, got, ok, want)
		}
	}

	// Manual flushes of the scope and of the shared map: counted by reason,
	// and both maps are empty.
	idmap.Flush(sctx, testDB)
	idmap.Flush(ctx, testDB)
	flushed := valuesOf(t, collect(t, reader, idmapotel.ScopeName), testDB)
	if got := flushed["idmap.flushes{reason=manual}"] - after["idmap.flushes{reason=manual}"]; got != 2 {
		t.Errorf("idmap.flushes{reason=manual} rose by %d with two Flush calls, want 2", got)
	}
	for _, k := range []string{"idmap.entries{map=shared}", "idmap.entries{map=scopes}"} {
		if got := flushed[k]; got != 0 {
			t.Errorf("%s = %d after Flush, want 0", k, got)
		}
	}

	// Every instrument reports db's every attribute value.
	wantKeys := []string{
		"idmap.hits{map=shared}", "idmap.hits{map=scopes}",
		"idmap.misses{map=shared}", "idmap.misses{map=scopes}",
		"idmap.refreshes{map=shared}", "idmap.refreshes{map=scopes}",
		"idmap.entries{map=shared}", "idmap.entries{map=scopes}",
		"idmap.expiries{cause=keys}", "idmap.expiries{cause=tables}", "idmap.expiries{cause=database}",
		"idmap.expiries{cause=remote}", "idmap.expiries{cause=age}",
		"idmap.flushes{reason=manual}", "idmap.flushes{reason=request end}",
		"idmap.flushes{reason=transaction end}", "idmap.flushes{reason=schema change}", "idmap.flushes{reason=bus gap}",
		"idmap.weak.released{}", "idmap.evicted{}",
		"idmap.bus.published{}", "idmap.bus.received{}", "idmap.bus.gaps{cause=lost}", "idmap.bus.gaps{cause=closed}",
		"idmap.bus.errors{}", "idmap.bus.listening{}",
		"idmap.bus.keys.published{}", "idmap.bus.keys.received{}", "idmap.bus.lease.expiries{}", "idmap.bus.probes{}",
		"idmap.bus.dropped{cause=too large}", "idmap.bus.dropped{cause=unauthenticated}", "idmap.bus.dropped{cause=malformed}",
		"idmap.bus.ready{}", "idmap.bus.lease.duration{}",
		// idmap.bus.proof.age: none without a proof of delivery
	}
	var gotKeys []string
	for k := range after {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(wantKeys)
	slices.Sort(gotKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("points of %q:\n got %q\nwant %q", testDB, gotKeys, wantKeys)
	}

	// Every point has db.name and the attribute keys of its instrument, and
	// the kind of its instrument.
	for _, p := range points {
		in, ok := instruments[p.metric]
		if !ok {
			t.Errorf("unexpected metric %s", p.metric)
			continue
		}
		if _, ok := p.attrs.Value(idmapotel.DBNameKey); !ok {
			t.Errorf("%s: no db.name", p.key())
		}
		var keys []string
		for _, a := range p.attrs.ToSlice() {
			if a.Key != idmapotel.DBNameKey {
				keys = append(keys, string(a.Key))
			}
		}
		if !slices.Equal(keys, in.keys) {
			t.Errorf("%s: attribute keys %q, want db.name and %q", p.key(), keys, in.keys)
		}
		kind := map[bool]string{true: "counter", false: "updowncounter"}[p.mono]
		if p.kind == "gauge" {
			kind = "gauge"
		}
		if kind != in.kind {
			t.Errorf("%s is a %s, want a %s", p.metric, kind, in.kind)
		}
	}
}

// TestDescriptions checks every instrument's unit and description.
func TestDescriptions(t *testing.T) {
	reader := newRegistered(t)
	_ = openTestDB(t, "file:otel_test_desc?mode=memory&cache=shared", "otel-test-desc")

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if len(rm.ScopeMetrics) != 1 || rm.ScopeMetrics[0].Scope.Name != idmapotel.ScopeName {
		t.Fatalf("scopes: %+v, want one: %s", rm.ScopeMetrics, idmapotel.ScopeName)
	}
	seen := map[string]bool{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		seen[m.Name] = true
		in, ok := instruments[m.Name]
		if !ok {
			t.Errorf("unexpected metric %s", m.Name)
			continue
		}
		if m.Unit != in.unit {
			t.Errorf("%s: unit %q, want %q", m.Name, m.Unit, in.unit)
		}
		if m.Description == "" {
			t.Errorf("%s: no description", m.Name)
		}
	}
	for name := range instruments {
		if !seen[name] && name != "idmap.bus.proof.age" { // none without a proof: TestBusMetrics
			t.Errorf("no metric %s", name)
		}
	}
}

// provingDropper is a Loopback that proves delivery and counts dropped
// payloads, as pgbus and redisbus do.
type provingDropper struct {
	*bus.ProvingLoopback
	drops bus.DropCounter
}

func (b *provingDropper) Dropped() bus.Drops { return b.drops.Load() }

// TestBusMetrics: the statistics of a database's bus and lease (keys
// published and received, gaps by cause, lease expiries, probes, dropped
// payloads, readiness, the lease and the age of the newest proof) are
// exported, on a bus that proves delivery.
func TestBusMetrics(t *testing.T) {
	ctx := context.Background()
	reader := newRegistered(t)
	l := bus.NewLoopback()
	defer l.Close()
	b := &provingDropper{ProvingLoopback: l.Proving()}
	const name, lease = "otel-test-bus", 200 * time.Millisecond
	db, err := idmap.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "bus.db"), idmap.Name(name), idmap.WithBus(b), idmap.Lease(lease))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')`); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := idmap.WaitReady(wctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := idmap.Get[Item](ctx, db, int64(1)); err != nil { // Item's key column is known from now on
		t.Fatal(err)
	}
	stats := func() idmap.Stats {
		st, _ := idmap.StatsOf(db)
		return st
	}
	// waitFor polls the statistics (the prober runs on its own clock).
	waitFor := func(what string, cond func(idmap.Stats) bool) {
		t.Helper()
		for !cond(stats()) {
			if wctx.Err() != nil {
				t.Fatalf("waiting for %s: %v", what, wctx.Err())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	before := valuesOf(t, collect(t, reader, idmapotel.ScopeName), name)
	st0 := stats()

	if _, err := db.ExecContext(ctx, `UPDATE items SET name = 'z' WHERE id = ?`, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, []bus.Message{{Origin: "another", Seq: 1, DB: name, Table: "items", Keys: []any{int64(1), int64(2)}, Columns: []string{"id"}}}); err != nil {
		t.Fatal(err)
	}
	l.Sync()
	b.drops.Add(bus.ErrTooLarge)
	b.drops.Add(bus.ErrUnauthenticated)
	b.drops.Add(bus.ErrUnauthenticated)
	l.Stall() // no proof comes: the lease expires
	waitFor("a lease expiry", func(s idmap.Stats) bool { return s.Bus.LeaseExpiries > st0.Bus.LeaseExpiries })
	l.Unstall()
	l.Cut(errors.New("cut"))
	waitFor("the loss", func(s idmap.Stats) bool { return s.Bus.GapsByCause["lost"] > st0.Bus.GapsByCause["lost"] })
	l.Restore()
	if err := idmap.WaitReady(wctx, db); err != nil {
		t.Fatal(err)
	}
	waitFor("a proof", func(s idmap.Stats) bool { return s.Bus.SinceProof >= 0 && s.Bus.Probes > st0.Bus.Probes })

	points := collect(t, reader, idmapotel.ScopeName)
	after := valuesOf(t, points, name)
	for k, want := range map[string]int64{
		"idmap.bus.keys.published{}":               1,
		"idmap.bus.keys.received{}":                2,
		"idmap.bus.gaps{cause=lost}":               1,
		"idmap.bus.gaps{cause=closed}":             0,
		"idmap.bus.lease.expiries{}":               int64(stats().Bus.LeaseExpiries - st0.Bus.LeaseExpiries),
		"idmap.bus.dropped{cause=too large}":       1,
		"idmap.bus.dropped{cause=unauthenticated}": 2,
		"idmap.bus.dropped{cause=malformed}":       0,
	} {
		if got := after[k] - before[k]; got != want {
			t.Errorf("%s rose by %d, want %d", k, got, want)
		}
	}
	if after["idmap.bus.lease.expiries{}"] == before["idmap.bus.lease.expiries{}"] {
		t.Error("idmap.bus.lease.expiries did not rise")
	}
	if after["idmap.bus.probes{}"] <= before["idmap.bus.probes{}"] {
		t.Error("idmap.bus.probes did not rise")
	}
	if after["idmap.bus.ready{}"] != 1 || after["idmap.bus.listening{}"] != 1 {
		t.Errorf("idmap.bus.ready = %d, idmap.bus.listening = %d; want 1, 1", after["idmap.bus.ready{}"], after["idmap.bus.listening{}"])
	}
	floats := map[string]float64{}
	for _, p := range points {
		if v, _ := p.attrs.Value(idmapotel.DBNameKey); v.AsString() == name && p.kind == "gauge" {
			floats[p.metric] = p.float
		}
	}
	if got := floats["idmap.bus.lease.duration"]; got != lease.Seconds() {
		t.Errorf("idmap.bus.lease.duration = %v, want %v", got, lease.Seconds())
	}
	if got, ok := floats["idmap.bus.proof.age"]; !ok || got < 0 {
		t.Errorf("idmap.bus.proof.age = %v (present %v), want a point >= 0 after a proof", got, ok)
	}
}

func TestUnregister(t *testing.T) {
	reader, mp := newReader(t)
	_ = openTestDB(t, "file:otel_test_unreg?mode=memory&cache=shared", "otel-test-unreg")
	reg, err := idmapotel.Register(mp)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(valuesOf(t, collect(t, reader, idmapotel.ScopeName), "otel-test-unreg")); n == 0 {
		t.Fatal("no points while registered")
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if points := collect(t, reader, idmapotel.ScopeName); len(points) != 0 {
		t.Errorf("%d points after Unregister, want none (first: %s)", len(points), points[0].key())
	}
	if err := reg.Unregister(); err != nil { // idempotent
		t.Errorf("second Unregister: %v", err)
	}
}

func TestWithMeterName(t *testing.T) {
	reader, mp := newReader(t)
	_ = openTestDB(t, "file:otel_test_meter?mode=memory&cache=shared", "otel-test-meter")
	reg, err := idmapotel.Register(mp, idmapotel.WithMeterName("my/meter"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	if n := len(collect(t, reader, idmapotel.ScopeName)); n != 0 {
		t.Errorf("%d points under %s, want none", n, idmapotel.ScopeName)
	}
	if len(valuesOf(t, collect(t, reader, "my/meter"), "otel-test-meter")) == 0 {
		t.Error("no points under my/meter")
	}
}

// TestConcurrent collects while databases are used, for the race detector.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	reader := newRegistered(t)
	db := openTestDB(t, "file:otel_test_conc?mode=memory&cache=shared", "otel-test-conc")
	if _, err := db.ExecContext(ctx, `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		var err error
		for i := 0; i < 50 && err == nil; i++ {
			_, err = idmap.Get[Item](ctx, db, int64(1+i%2))
			if err == nil && i%10 == 0 {
				_, err = db.ExecContext(ctx, `UPDATE items SET name = ? WHERE id = 1`, fmt.Sprint(i))
			}
		}
		done <- err
	}()
	for range 20 {
		collect(t, reader, idmapotel.ScopeName)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := valuesOf(t, collect(t, reader, idmapotel.ScopeName), "otel-test-conc")
	// A Get counts as a hit, a miss, or a refresh (of an expired entry).
	if n := got["idmap.hits{map=shared}"] + got["idmap.misses{map=shared}"] + got["idmap.refreshes{map=shared}"]; n < 50 {
		t.Errorf("hits + misses + refreshes = %d, want at least 50 (the Gets)", n)
	}
}

// TestGlobalProvider registers with the global MeterProvider (a no-op one
// here) when mp is nil.
func TestGlobalProvider(t *testing.T) {
	reg, err := idmapotel.Register(nil)
	if err != nil {
		t.Fatal(err)
	}
	if reg == nil {
		t.Fatal("nil Registration")
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
}
