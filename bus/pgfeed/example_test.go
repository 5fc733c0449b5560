package pgfeed_test

import (
	"context"
	"log"
	"os"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus/pgfeed"
)

// A program that reads rows other programs write: the feed expires what
// they change, and a commit whose triggers the statement reader cannot
// follow returns once the feed has applied it.
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("DATABASE_URL")
	f, err := pgfeed.New(ctx, dsn, "app", pgfeed.Tables("users", "posts"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	db, err := idmap.Open("pgx", dsn, idmap.Name("app"), idmap.WithSource(f))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	// … idmap.Get, idmap.Bind as usual.
}
