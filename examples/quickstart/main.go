// Command quickstart is idmap's tour in one run:
//
//	go run ./examples/quickstart
//
// It makes an SQLite database in a temporary directory (nothing to install)
// and shows, step by step, what an identity map does for database/sql:
// identity, temporary fields, Get without a query, flushes and their
// signals, scopes, changing a row (in a scope, in a transaction, through a
// Copy: step 6) and statistics.
//
// The first build compiles SQLite (github.com/mattn/go-sqlite3) through cgo:
// it takes a minute or two and prints nothing meanwhile; later builds reuse
// Go's build cache.
package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"
	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// User is a mapped type: it has a TableName method. Its primary key is the
// field whose column is "id". Visits is a temporary field: not a column, but
// kept on the object across later loads.
type User struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Visits int    `db:"-"`
}

func (User) TableName() string { return "users" }

// counter counts the statements that reach SQLite, to show when idmap
// answers without a query.
type counter struct {
	sqlmw.NullInterceptor
	n atomic.Int64
}

func (c *counter) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	c.n.Add(1)
	return c.NullInterceptor.ConnQueryContext(ctx, conn, query, args)
}

func (c *counter) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.NullInterceptor.ConnExecContext(ctx, conn, query, args)
}

func (c *counter) StmtQueryContext(ctx context.Context, stmt driver.StmtQueryContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	c.n.Add(1)
	return c.NullInterceptor.StmtQueryContext(ctx, stmt, query, args)
}

func (c *counter) StmtExecContext(ctx context.Context, stmt driver.StmtExecContext, query string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.NullInterceptor.StmtExecContext(ctx, stmt, query, args)
}

// sent returns how many statements reached SQLite since the last call.
func (c *counter) sent() int64 { return c.n.Swap(0) }

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "idmap-quickstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// In an application this is just
	//
	//	db, err := sql.Open("idmap+sqlite3", path)
	//
	// Here SQLite is wrapped in a statement counter first, and idmap is put
	// in front of that: idmap.Register("sqlite3-counted") registers
	// "idmap+sqlite3-counted".
	queries := &counter{}
	sql.Register("sqlite3-counted", sqlmw.Driver(&sqlite3.SQLiteDriver{}, queries))
	db, err := sql.Open(idmap.Register("sqlite3-counted"), filepath.Join(dir, "app.db"))
	if err != nil {
		return err
	}
	defer db.Close()

	if _, err := db.ExecContext(ctx, `
		CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')`); err != nil {
		return err
	}

	fmt.Println("1. Identity: two queries that return one row give one object.")
	// idmap.Query runs a query and binds its rows (idmap.Bind does it for
	// rows queried yourself); idmap.QueryOne binds the first row.
	all, err := idmap.Query[User](ctx, db, "SELECT id, name FROM users ORDER BY id")
	if err != nil {
		return err
	}
	ann, err := idmap.QueryOne[User](ctx, db, "SELECT id, name FROM users WHERE name = ?", "ann")
	if err != nil {
		return err
	}
	fmt.Println("   same pointer:", ann == all[0])

	fmt.Println(`2. A temporary field (db:"-") survives a reload by another query.`)
	ann.Visits = 3
	again, err := idmap.QueryOne[User](ctx, db, "SELECT id, name FROM users WHERE id < ? ORDER BY id", 2)
	if err != nil {
		return err
	}
	fmt.Println("   visits after the reload:", again.Visits)

	fmt.Println("3. Get serves a loaded row from the map, without a query.")
	queries.sent()
	u, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		return err
	}
	u2, err := idmap.Get[User](ctx, db, "1") // "1" and 1 are the same key
	if err != nil {
		return err
	}
	fmt.Println("   queries sent:", queries.sent())
	fmt.Println("   same pointer:", u == ann && u2 == ann)

	fmt.Println("4. A flush forgets the objects (they stay valid); signals report it.")
	stop := connectPrinters()
	idmap.Flush(ctx, idmap.NameOf(db)) // the database's name; no name flushes every database
	fresh, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		return err
	}
	fmt.Println("   Get after the flush: queries sent:", queries.sent(), "| same pointer:", fresh == ann)
	fmt.Println("   DDL through the driver flushes by itself:")
	if _, err := db.ExecContext(ctx, "CREATE INDEX users_name ON users (name)"); err != nil {
		return err
	}
	stop()

	fmt.Println("5. A scope per unit of work (a request, a job).")
	shared, err := idmap.Get[User](ctx, db, 2)
	if err != nil {
		return err
	}
	job1, job2 := idmap.NewContext(ctx), idmap.NewContext(ctx)
	b1, err := idmap.Get[User](job1, db, 2)
	if err != nil {
		return err
	}
	b2, err := idmap.Get[User](job2, db, 2)
	if err != nil {
		return err
	}
	fmt.Println("   two scopes, one row, same pointer:", b1 == b2)
	fmt.Println("   the shared map is untouched:", idmap.Cached[User](ctx, db, 2) == shared && shared != b1)

	b1.Visits = 5
	a1, err := idmap.Get[User](job1, db, 1)
	if err != nil {
		return err
	}
	fmt.Println("   UPDATE … WHERE id = 2 through the driver expires that key, in every map:")
	if _, err := db.ExecContext(job1, "UPDATE users SET name = ? WHERE id = ?", "bea", 2); err != nil {
		return err
	}
	queries.sent()
	fmt.Println("   user 1 is still served without a query:", idmap.Cached[User](job1, db, 1) == a1)
	b1again, err := idmap.Get[User](job1, db, 2)
	if err != nil {
		return err
	}
	fmt.Printf("   in the scope, refreshed in place: queries sent: %d | same pointer: %v | name: %s | visits: %d\n",
		queries.sent(), b1again == b1, b1.Name, b1.Visits)
	s2, err := idmap.Get[User](ctx, db, 2)
	if err != nil {
		return err
	}
	fmt.Printf("   in the shared map, a new object:  same pointer: %v | name: %s | the old object still says: %s\n",
		s2 == shared, s2.Name, shared.Name)

	fmt.Println("6. Changing a row. Never write to an object of the shared map: other goroutines read it.")
	if err := changeRows(ctx, db); err != nil {
		return err
	}

	fmt.Println("7. Statistics (idmap.StatsOf; also idmap.StatsHandler, and idmapexpvar.Publish for expvar).")
	if st, ok := idmap.StatsOf(db); ok {
		fmt.Printf("   shared map: %d hits, %d misses, %d refreshes | scopes: %d hits, %d misses | expired keys: %d\n",
			st.Shared.Hits, st.Shared.Misses, st.Shared.Refreshes, st.Scopes.Hits, st.Scopes.Misses, st.Expiries.Keys)
	}
	return nil
}

// changeRows changes a row in the three ways that keep the shared map's
// objects untouched: in a scope, in a transaction, and through a copy.
func changeRows(ctx context.Context, db *sql.DB) error {
	const rename = "UPDATE users SET name = ? WHERE id = ?"

	// In a scope (a request under idmap.Middleware, a job): its objects are
	// its own. Change one, then write it; the write expires the key.
	job := idmap.NewContext(ctx)
	u, err := idmap.Get[User](job, db, 3)
	if err != nil {
		return err
	}
	u.Name = "cyd"
	if _, err := db.ExecContext(job, rename, u.Name, u.ID); err != nil {
		return err
	}
	shared, err := idmap.Get[User](ctx, db, 3)
	if err != nil {
		return err
	}
	fmt.Println("   in a scope:        the shared map now loads:", shared.Name, "| same object:", shared == u)

	// In a transaction: begun without a scope, it is its own scope.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t, err := idmap.Get[User](ctx, tx, 3)
	if err != nil {
		return err
	}
	t.Name = "cyril"
	if _, err := tx.ExecContext(ctx, rename, t.Name, t.ID); err != nil {
		return err
	}
	before, err := idmap.Get[User](ctx, db, 3)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	after, err := idmap.Get[User](ctx, db, 3)
	if err != nil {
		return err
	}
	fmt.Println("   in a transaction:  before the commit others see:", before.Name, "| after:", after.Name)

	// Through a copy of a shared object: idmap.Copy returns an object that
	// is yours; the shared one is never written to.
	c := idmap.Copy(after)
	c.Name = "cy"
	if _, err := db.ExecContext(ctx, rename, c.Name, c.ID); err != nil {
		return err
	}
	now, err := idmap.Get[User](ctx, db, 3)
	if err != nil {
		return err
	}
	fmt.Println("   through a copy:    Get now returns:", now.Name, "| the old object still says:", after.Name)
	return nil
}

// connectPrinters prints every flush signal until the returned function is
// called.
func connectPrinters() (disconnect func()) {
	show := func(kind string) func(signals.Flush) {
		return func(f signals.Flush) {
			db := "every database"
			if f.DB != "" {
				db = filepath.Base(f.DB) // the name is the DSN: a temporary path here
			}
			fmt.Printf("   %-9s db=%s reason=%q scoped=%v\n", kind, db, f.Reason, f.Scoped)
		}
	}
	stopPre := signals.PreFlush.Connect(show("PreFlush"))
	stopPost := signals.PostFlush.Connect(show("PostFlush"))
	return func() { stopPre(); stopPost() }
}
