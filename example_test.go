package idmap_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	_ "github.com/mattn/go-sqlite3"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// Author is mapped by its TableName method; its primary key is the field
// whose column is "id". Visits is a temporary field: not a column, and kept
// across later loads of the same row.
type Author struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Visits int    `db:"-"`
}

func (Author) TableName() string { return "authors" }

// Book is mapped with idmap.Model (see ExampleModel). Its key is tagged
// "pk"; untagged fields take the snake_case of their name (AuthorID →
// author_id); the fields of the embedded Audit are columns of Book.
type Book struct {
	ISBN     string `db:"isbn,pk"`
	Title    string
	AuthorID int64
	Audit
}

// Audit is embedded in Book.
type Audit struct {
	CreatedBy string
}

// Each example opens its own in-memory SQLite database. One connection keeps
// it alive (and every connection on the same database).
const authorsSchema = `
	CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
	INSERT INTO authors (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');`

func Example_identity() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_identity?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	rows, err := db.QueryContext(ctx, "SELECT id, name FROM authors ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	var all []*Author
	if err := idmap.Bind(rows, &all); err != nil {
		log.Fatal(err)
	}

	rows, err = db.QueryContext(ctx, "SELECT id, name FROM authors WHERE name = ?", "ann")
	if err != nil {
		log.Fatal(err)
	}
	var ann *Author
	if err := idmap.Bind(rows, &ann); err != nil {
		log.Fatal(err)
	}

	fmt.Println("same pointer:", ann == all[0])
	ann.Visits++ // set through one pointer, seen through every other
	fmt.Println("visits:", all[0].Visits)
	// Output:
	// same pointer: true
	// visits: 1
}

func ExampleBind() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_bind?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	// *[]*T: every row; for a mapped T, the canonical objects.
	rows, err := db.QueryContext(ctx, "SELECT id, name FROM authors ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	var authors []*Author
	if err := idmap.Bind(rows, &authors); err != nil {
		log.Fatal(err)
	}
	fmt.Println("authors:", len(authors))

	// **T: the first row; sql.ErrNoRows when there is none.
	rows, err = db.QueryContext(ctx, "SELECT id, name FROM authors WHERE id = ?", 2)
	if err != nil {
		log.Fatal(err)
	}
	var bob *Author
	if err := idmap.Bind(rows, &bob); err != nil {
		log.Fatal(err)
	}
	fmt.Println("canonical:", bob == authors[1])

	rows, err = db.QueryContext(ctx, "SELECT id, name FROM authors WHERE id = ?", 42)
	if err != nil {
		log.Fatal(err)
	}
	var nobody *Author
	fmt.Println("no row:", errors.Is(idmap.Bind(rows, &nobody), sql.ErrNoRows))

	// *[]T and *T: types that are not mapped, such as one column or a
	// report row, bound by value.
	rows, err = db.QueryContext(ctx, "SELECT name FROM authors ORDER BY name DESC")
	if err != nil {
		log.Fatal(err)
	}
	var names []string
	if err := idmap.Bind(rows, &names); err != nil {
		log.Fatal(err)
	}
	fmt.Println("names:", names)

	type summary struct {
		Authors  int
		LongName string
	}
	rows, err = db.QueryContext(ctx, "SELECT count(*) AS authors, max(name) AS long_name FROM authors")
	if err != nil {
		log.Fatal(err)
	}
	var s summary
	if err := idmap.Bind(rows, &s); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("summary: %+v\n", s)

	// A column that no field takes is an error, and the error says which.
	rows, err = db.QueryContext(ctx, "SELECT id, name, 1 AS extra FROM authors")
	if err != nil {
		log.Fatal(err)
	}
	err = idmap.Bind(rows, &authors)
	fmt.Println(errors.Is(err, idmap.ErrNoField), err)
	// Output:
	// authors: 3
	// canonical: true
	// no row: true
	// names: [cy bob ann]
	// summary: {Authors:3 LongName:cy}
	// true idmap: Bind column index 2, name "extra": no field in idmap_test.Author
}

func ExampleGet() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_get?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	fmt.Println("cached before:", idmap.Cached[Author](ctx, db, 1) != nil)
	ann, err := idmap.Get[Author](ctx, db, 1) // a miss: one query
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cached after:", idmap.Cached[Author](ctx, db, 1) == ann)

	again, err := idmap.Get[Author](ctx, db, "1") // a hit: no query; "1" and 1 are one key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same pointer:", again == ann, ann.Name)

	_, err = idmap.Get[Author](ctx, db, 42)
	fmt.Println("absent:", errors.Is(err, sql.ErrNoRows))

	_, err = idmap.Get[Author](ctx, db, 1, 2)
	fmt.Println("bad key:", errors.Is(err, idmap.ErrKey))
	// Output:
	// cached before: false
	// cached after: true
	// same pointer: true ann
	// absent: true
	// bad key: true
}

func ExampleIntern() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_intern?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	ann, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}

	// Objects made elsewhere (JSON, sqlx, scany) bypass the map...
	var decoded []*Author
	if err := json.Unmarshal([]byte(`[{"ID":1,"Name":"ann"},{"ID":2,"Name":"bob"}]`), &decoded); err != nil {
		log.Fatal(err)
	}
	fmt.Println("before Intern:", decoded[0] == ann)

	// ...until Intern replaces each with its canonical object, and makes
	// the new ones canonical.
	if err := idmap.Intern(ctx, db, decoded); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Intern:", decoded[0] == ann)
	fmt.Println("new one canonical:", idmap.Cached[Author](ctx, db, 2) == decoded[1])
	// Output:
	// before Intern: false
	// after Intern: true
	// new one canonical: true
}

func ExampleMiddleware() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_middleware?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	// Each request gets a scope of its own: one object per row for the
	// request, forgotten when the handler returns.
	handler := idmap.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := idmap.Get[Author](r.Context(), db, 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		a.Visits++
		b, err := idmap.Get[Author](r.Context(), db, 1) // no query: the request's object
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "same pointer: %v, visits: %d", a == b, b.Visits)
	}))

	stop := signals.PostFlush.Connect(func(f signals.Flush) {
		if f.Reason == signals.RequestEnd {
			fmt.Println("request scope flushed")
		}
	})
	defer stop()

	for range 2 {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("GET", "/authors/1", nil))
		fmt.Println(rec.Body.String())
	}
	// Output:
	// request scope flushed
	// same pointer: true, visits: 1
	// request scope flushed
	// same pointer: true, visits: 1
}

func ExampleFlush() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_flush?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}
	name := idmap.NameOf(db) // the DSN, without any password

	show := func(kind string) func(signals.Flush) {
		return func(f signals.Flush) {
			if f.DB == name {
				fmt.Printf("%s table=%q reason=%q scoped=%v\n", kind, f.Table, f.Reason, f.Scoped)
			}
		}
	}
	defer signals.PreFlush.Connect(show("pre "))()
	defer signals.PostFlush.Connect(show("post"))()

	ann, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}

	// Flush forgets every object of the databases named (all, if none is).
	// Objects handed out stay valid; the next load makes new ones.
	idmap.Flush(ctx, name)
	fresh, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same pointer after Flush:", fresh == ann)

	// FlushType forgets one type; its signals name the table.
	idmap.FlushType[Author](ctx, name)
	fmt.Println("cached after FlushType:", idmap.Cached[Author](ctx, db, 1) != nil)

	// FlushInstance forgets one object and sends no signal.
	bob, err := idmap.Get[Author](ctx, db, 2)
	if err != nil {
		log.Fatal(err)
	}
	idmap.FlushInstance(ctx, bob)
	fmt.Println("cached after FlushInstance:", idmap.Cached[Author](ctx, db, 2) != nil)

	// DDL through the driver flushes the database by itself.
	if _, err := db.ExecContext(ctx, "CREATE INDEX authors_name ON authors (name)"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// pre  table="" reason="manual" scoped=false
	// post table="" reason="manual" scoped=false
	// same pointer after Flush: false
	// pre  table="authors" reason="manual" scoped=false
	// post table="authors" reason="manual" scoped=false
	// cached after FlushType: false
	// cached after FlushInstance: false
	// pre  table="authors" reason="schema change" scoped=false
	// post table="authors" reason="schema change" scoped=false
}

func ExampleNewContext() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_newcontext?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	// One scope per unit of work: a private map, never shared.
	job1, job2 := idmap.NewContext(ctx), idmap.NewContext(ctx)
	a1, err := idmap.Get[Author](job1, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	a2, err := idmap.Get[Author](job2, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("two scopes, same pointer:", a1 == a2)
	fmt.Println("in the shared map:", idmap.Cached[Author](ctx, db, 1) != nil)

	// A write through the driver expires what the scope holds; the next
	// load refreshes the scope's object in place.
	a1.Visits = 7
	if _, err := db.ExecContext(job1, "UPDATE authors SET name = ? WHERE id = ?", "anne", 1); err != nil {
		log.Fatal(err)
	}
	again, err := idmap.Get[Author](job1, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("refreshed in place:", again == a1, a1.Name, a1.Visits)
	// Output:
	// two scopes, same pointer: false
	// in the shared map: false
	// refreshed in place: true anne 7
}

func Example_transaction() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_transaction?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}
	name := idmap.NameOf(db)
	defer signals.PostFlush.Connect(func(f signals.Flush) {
		if f.DB == name && f.Reason == signals.TxEnd {
			fmt.Println("transaction scope flushed")
		}
	})()

	shared, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}

	// A transaction begun without a scope is its own scope: what it loads
	// never reaches the shared map, and is forgotten when it ends.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	inTx, err := idmap.Get[Author](ctx, tx, 1)
	if err != nil {
		log.Fatal(err)
	}
	again, err := idmap.Get[Author](ctx, tx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("within the transaction, same pointer:", inTx == again)
	fmt.Println("the shared object:", inTx == shared)
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// within the transaction, same pointer: true
	// the shared object: false
	// transaction scope flushed
}

func ExampleModel() {
	// Usually in an init function, before Book is first loaded.
	idmap.Model[Book](idmap.Table("books"), idmap.StrongRefs())

	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:example_model?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `
		CREATE TABLE books (isbn TEXT PRIMARY KEY, title TEXT, author_id INTEGER, created_by TEXT);
		INSERT INTO books VALUES ('978-0', 'Go', 1, 'ann')`); err != nil {
		log.Fatal(err)
	}

	rows, err := db.QueryContext(ctx, "SELECT isbn, title, author_id, created_by FROM books")
	if err != nil {
		log.Fatal(err)
	}
	var books []*Book
	if err := idmap.Bind(rows, &books); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", *books[0])

	// StrongRefs: the shared map keeps the object until it is flushed, even
	// when no one else holds it.
	b, err := idmap.Get[Book](ctx, db, "978-0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same pointer:", b == books[0])
	// Output:
	// {ISBN:978-0 Title:Go AuthorID:1 Audit:{CreatedBy:ann}}
	// same pointer: true
}

func ExampleNameOf() {
	// sql.Open does not connect; the name is known at once. A password in
	// the DSN never appears in a name, an error or a signal.
	db, err := sql.Open("idmap+sqlite3", "file:app.db?_auth_user=app&_auth_pass=s3cret&mode=memory")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	fmt.Println(idmap.NameOf(db))

	plain, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer plain.Close()
	fmt.Printf("%q\n", idmap.NameOf(plain))
	// Output:
	// file:app.db?_auth_user=app&mode=memory
	// ""
}

func ExampleGetMany() {
	ctx := idmap.NewContext(context.Background())
	db, err := sql.Open("idmap+sqlite3", "file:example_getmany?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}
	bob, err := idmap.Get[Author](ctx, db, 2)
	if err != nil {
		log.Fatal(err)
	}

	// Books would give these author keys: one query loads the misses (1
	// and 3); bob comes from the map; 9 does not exist.
	authors, err := idmap.GetMany[Author](ctx, db, 3, 2, 9, 1)
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range authors {
		if a == nil {
			fmt.Println("nil")
			continue
		}
		fmt.Println(a.ID, a.Name, a == bob)
	}
	// Output:
	// 3 cy false
	// 2 bob true
	// nil
	// 1 ann false
}

// openExample opens an in-memory SQLite database of authors through idmap,
// named after the example. One connection keeps it alive.
func openExample(ctx context.Context, name string) *sql.DB {
	db, err := sql.Open("idmap+sqlite3", "file:"+name+"?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}
	return db
}

func ExampleQuery() {
	ctx := idmap.NewContext(context.Background())
	db := openExample(ctx, "example_query")
	defer db.Close()

	// Query runs the query and binds its rows: canonical pointers.
	authors, err := idmap.Query[Author](ctx, db, "SELECT id, name FROM authors WHERE id >= ? ORDER BY id", 2)
	if err != nil {
		log.Fatal(err)
	}
	bob, err := idmap.Get[Author](ctx, db, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(authors), authors[0].Name, authors[0] == bob)

	// An error of the query itself comes back as the driver gave it.
	_, err = idmap.Query[Author](ctx, db, "SELECT id, name FROM nowhere")
	fmt.Println(err)
	// Output:
	// 2 bob true
	// no such table: nowhere
}

func ExampleQueryOne() {
	ctx := idmap.NewContext(context.Background())
	db := openExample(ctx, "example_queryone")
	defer db.Close()

	ann, err := idmap.QueryOne[Author](ctx, db, "SELECT id, name FROM authors WHERE name = ?", "ann")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ann.ID, ann.Name)

	_, err = idmap.QueryOne[Author](ctx, db, "SELECT id, name FROM authors WHERE name = ?", "zed")
	fmt.Println(errors.Is(err, sql.ErrNoRows))

	// A type that is not mapped, or a single column, works too.
	n, err := idmap.QueryOne[int](ctx, db, "SELECT COUNT(*) FROM authors")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(*n, "authors")
	// Output:
	// 1 ann
	// true
	// 3 authors
}

func ExampleGetByKeys() {
	ctx := idmap.NewContext(context.Background())
	db := openExample(ctx, "example_getbykeys")
	defer db.Close()

	// The keys as the caller holds them: a []int64 (the type is inferred).
	ids := []int64{3, 1, 9}
	authors, err := idmap.GetByKeys[Author](ctx, db, ids)
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range authors {
		if a == nil {
			fmt.Println("nil")
			continue
		}
		fmt.Println(a.ID, a.Name)
	}

	// GetMany takes its keys as arguments; given the slice, it says what
	// to call.
	_, err = idmap.GetMany[Author](ctx, db, ids)
	fmt.Println(err)
	// Output:
	// 3 cy
	// 1 ann
	// nil
	// idmap: GetMany: key 0 of idmap_test.Author is a []int64; to pass a slice of keys, call idmap.GetByKeys[idmap_test.Author](ctx, q, keys) (or GetMany(ctx, q, keys...) with a []any)
}

// Change a row loaded in the shared map through a copy: the shared object,
// which other goroutines may be reading, is never written to.
func ExampleCopy() {
	ctx := context.Background() // no scope: the shared map
	db := openExample(ctx, "example_copy")
	defer db.Close()

	ann, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	c := idmap.Copy(ann)
	c.Name = "anne"
	again, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("before the write:", again.Name, again == ann)

	if _, err := db.ExecContext(ctx, "UPDATE authors SET name = ? WHERE id = ?", c.Name, c.ID); err != nil {
		log.Fatal(err)
	}
	now, err := idmap.Get[Author](ctx, db, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after the write:", now.Name, now == ann)
	fmt.Println("the old object:", ann.Name)
	// Output:
	// before the write: ann true
	// after the write: anne false
	// the old object: ann
}

// Change a row in a transaction: what it loads is its own.
func Example_changeInTransaction() {
	ctx := context.Background()
	db := openExample(ctx, "example_change_tx")
	defer db.Close()

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	a, err := idmap.Get[Author](ctx, tx, 2) // the transaction's own object
	if err != nil {
		log.Fatal(err)
	}
	a.Name = "bea"
	if _, err := tx.ExecContext(ctx, "UPDATE authors SET name = ? WHERE id = ?", a.Name, a.ID); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	b, err := idmap.Get[Author](ctx, db, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Name, b == a)
	// Output:
	// bea false
}
