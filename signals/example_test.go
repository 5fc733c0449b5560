package signals_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	_ "github.com/mattn/go-sqlite3"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// Author is mapped for idmap by its TableName method.
type Author struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (Author) TableName() string { return "authors" }

// PreFlush and PostFlush are sent around every flush of an idmap map, on
// the goroutine that flushes: a manual Flush, the end of a transaction's
// own scope, DDL through the driver (and the end of a Middleware request).
func ExampleSignal_Connect() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:signals_example?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `
		CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO authors (id, name) VALUES (1, 'ann')`); err != nil {
		log.Fatal(err)
	}
	name := idmap.NameOf(db)

	// The signals are global: keep to the flushes of this database, and
	// disconnect when done.
	show := func(when string) func(signals.Flush) {
		return func(f signals.Flush) {
			if f.DB == name {
				fmt.Printf("%s reason=%q table=%q scoped=%v\n", when, f.Reason, f.Table, f.Scoped)
			}
		}
	}
	disconnectPre := signals.PreFlush.Connect(show("pre "))
	defer disconnectPre()
	disconnectPost := signals.PostFlush.Connect(show("post"))
	defer disconnectPost()

	// A manual flush of the shared maps of this database.
	idmap.Flush(ctx, name)

	// A transaction begun without a scope is its own scope, flushed when it
	// ends.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := idmap.Get[Author](ctx, tx, 1); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	// DDL through the driver flushes what it changes.
	if _, err := db.ExecContext(ctx, "CREATE INDEX authors_name ON authors (name)"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// pre  reason="manual" table="" scoped=false
	// post reason="manual" table="" scoped=false
	// pre  reason="transaction end" table="" scoped=true
	// post reason="transaction end" table="" scoped=true
	// pre  reason="schema change" table="authors" scoped=false
	// post reason="schema change" table="authors" scoped=false
}
