package idmap_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// Instances that share a database open it under one Name with a bus: each
// committed write is published as one message per table, and each
// instance expires what other instances' messages name. Here a Loopback bus
// shows what this instance publishes; in production, use pgbus (PostgreSQL
// LISTEN/NOTIFY) or redisbus (Redis pub/sub).
func ExampleWithBus() {
	ctx := context.Background()
	b := bus.NewLoopback()
	defer b.Close()
	db, err := idmap.Open("sqlite3", "file:example_bus?mode=memory&cache=shared", idmap.Name("app"), idmap.WithBus(b))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	// Another instance would receive these.
	_ = b.Subscribe(bus.Handler{Message: func(m bus.Message) {
		fmt.Printf("message: db=%s table=%s keys=%v\n", m.DB, m.Table, m.Keys)
	}})
	b.Sync()
	before := len(b.Sent())

	if _, err := idmap.Get[Author](ctx, db, 1); err != nil { // the model's key is known from here on
		log.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []int{1, 3} {
		if _, err := tx.ExecContext(ctx, "UPDATE authors SET name = name WHERE id = ?", id); err != nil {
			log.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil { // one message for the transaction
		log.Fatal(err)
	}
	b.Sync()

	ann, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cached:", idmap.Cached[Author](ctx, db, 1) != nil)

	// A message from another instance expires the rows it names here.
	_ = b.Publish(ctx, []bus.Message{{Origin: "another-instance", Seq: 1, DB: "app", Table: "authors", Keys: []any{int64(1)}, Columns: []string{"id"}}})
	b.Sync()
	fmt.Println("cached after the remote write:", idmap.Cached[Author](ctx, db, 1) != nil)
	again, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("reloaded:", again != ann)
	fmt.Println("published:", len(b.Sent())-before-1) // less the one sent above
	// Output:
	// message: db=app table=authors keys=[1 3]
	// cached: true
	// message: db=app table=authors keys=[1]
	// cached after the remote write: false
	// reloaded: true
	// published: 1
}

// StatsOf reads a database's counters; StatsHandler serves every
// database's as JSON, and idmapexpvar.Publish publishes them through expvar.
func ExampleStatsOf() {
	ctx := context.Background()
	db, err := idmap.Open("sqlite3", "file:example_stats?mode=memory&cache=shared", idmap.Name("stats-example"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}
	before, _ := idmap.StatsOf(db) // counters count from the start of the process
	sctx := idmap.NewContext(ctx)
	for range 3 {
		if _, err := idmap.Get[Author](sctx, db, 2); err != nil { // one miss, two hits
			log.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "UPDATE authors SET name = 'b' WHERE id = 2"); err != nil {
		log.Fatal(err)
	}
	st, _ := idmap.StatsOf(db)
	fmt.Printf("scopes: %d entries, %d hits, %d misses\n", st.Scopes.Entries,
		st.Scopes.Hits-before.Scopes.Hits, st.Scopes.Misses-before.Scopes.Misses)
	fmt.Printf("expired: %d keys\n", st.Expiries.Keys-before.Expiries.Keys)

	rec := httptest.NewRecorder()
	idmap.StatsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/idmap", nil))
	fmt.Println("handler lists it:", strings.Contains(rec.Body.String(), `"db": "stats-example"`))
	// Output:
	// scopes: 1 entries, 2 hits, 1 misses
	// expired: 1 keys
	// handler lists it: true
}

// WaitReady waits until a database's bus listens and has proven delivery
// (its lease holds): until then every Get queries. signals.Bus tells each
// change, with the database's name.
func ExampleWaitReady() {
	b := bus.NewLoopback()
	defer b.Close()
	db, err := idmap.Open("sqlite3", "file:example_ready?mode=memory&cache=shared",
		idmap.Name("app-ready"), idmap.WithBus(b.Proving()), idmap.Lease(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := idmap.WaitReady(ctx, db); err != nil {
		log.Fatal(err)
	}
	st, _ := idmap.StatsOf(db)
	fmt.Println("ready:", idmap.Ready(db), "listening:", st.Bus.Listening, "lease:", st.Bus.Lease)
	// Output:
	// ready: true listening: true lease: 1s
}
