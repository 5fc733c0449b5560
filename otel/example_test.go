package idmapotel_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	_ "github.com/mattn/go-sqlite3"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go-idmap/idmap"
	idmapotel "github.com/go-idmap/idmap/otel"
)

// Author is mapped by its TableName method; its key is tagged "pk".
type Author struct {
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
}

func (Author) TableName() string { return "authors" }

// Example registers idmap's metrics with a MeterProvider; a ManualReader
// stands in for an exporter. The reader reports deltas: what happened since
// its previous collection (idmap's counters count from the start of the
// process).
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(
		func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	reg, err := idmapotel.Register(mp)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()

	db, err := idmap.Open("sqlite3", "file:otel_example?mode=memory&cache=shared", idmap.Name("otel-example"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO authors (id, name) VALUES (1, 'ann'), (2, 'bob');`); err != nil {
		log.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil { // what came before
		log.Fatal(err)
	}

	// Two rows loaded (two misses), then one of them served twice from the
	// shared map (two hits).
	rows, err := db.QueryContext(ctx, "SELECT id, name FROM authors ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	var all []*Author
	if err := idmap.Bind(rows, &all); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		ann, err := idmap.Get[Author](ctx, db, 1)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ann == all[0], ann.Name)
	}

	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "idmap.hits" && m.Name != "idmap.misses" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if name, _ := dp.Attributes.Value(idmapotel.DBNameKey); name.AsString() != "otel-example" {
					continue
				}
				mapName, _ := dp.Attributes.Value(idmapotel.MapKey)
				lines = append(lines, fmt.Sprintf("%s %s{map=%s} %d", m.Name, m.Unit, mapName.AsString(), dp.Value))
			}
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// true ann
	// true ann
	// idmap.hits {hit}{map=scopes} 0
	// idmap.hits {hit}{map=shared} 2
	// idmap.misses {miss}{map=scopes} 0
	// idmap.misses {miss}{map=shared} 2
}
