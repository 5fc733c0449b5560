package interop_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"

	"github.com/georgysavva/scany/v2/sqlscan"
	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/go-idmap/idmap"
)

// Author is an ordinary struct: sqlx and scany read its db tags, GORM its
// field names, and its TableName method maps it for idmap (and names its
// table for GORM). Its primary key is the field whose column is "id".
type Author struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (Author) TableName() string { return "authors" }

// Each example opens its own in-memory SQLite database, through idmap's
// driver. One connection keeps it alive.
const authorsSchema = `
	CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
	INSERT INTO authors (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');`

// sqlx scans into structs as usual; idmap.Intern then makes its objects the
// canonical ones, which idmap.Get and later loads return.
func Example_sqlx() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:interop_sqlx?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	// sqlx wraps the idmap *sql.DB: its queries go through idmap's driver.
	x := sqlx.NewDb(db, "sqlite3")
	var authors []*Author
	if err := x.SelectContext(ctx, &authors, "SELECT id, name FROM authors ORDER BY id"); err != nil {
		log.Fatal(err)
	}
	// sqlx made new objects; Intern replaces each with its canonical object,
	// or makes it canonical when its row is not in the map yet.
	if err := idmap.Intern(ctx, db, authors); err != nil {
		log.Fatal(err)
	}
	ann, err := idmap.Get[Author](ctx, db, 1) // no query: ann is in the map
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same object:", ann == authors[0])

	// Another sqlx query, interned: the same pointers again.
	var bs []*Author
	if err := x.SelectContext(ctx, &bs, "SELECT id, name FROM authors WHERE name LIKE ?", "b%"); err != nil {
		log.Fatal(err)
	}
	if err := idmap.Intern(ctx, db, bs); err != nil {
		log.Fatal(err)
	}
	fmt.Println("second query, same object:", bs[0] == authors[1], bs[0].Name)
	// Output:
	// same object: true
	// second query, same object: true bob
}

// sqlx on PostgreSQL: sqlx picks its bind variables by driver name and does
// not know the idmap names, so tell it, once, before opening, that they take
// $1, $2… (without it, Rebind leaves "?" and named queries compile to "?",
// which PostgreSQL rejects). The idmap names of SQLite and MySQL need
// nothing: sqlx keeps "?" for a name it does not know. This example needs a
// PostgreSQL server (DATABASE_URL), so it is compiled, not run;
// TestSqlxPostgresBindDriver runs the same on one.
func Example_sqlxPostgres() {
	sqlx.BindDriver("idmap+pgx", sqlx.DOLLAR)
	sqlx.BindDriver("idmap+postgres", sqlx.DOLLAR)

	ctx := context.Background()
	x, err := sqlx.Open("idmap+pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()

	var authors []*Author
	if err := x.SelectContext(ctx, &authors, x.Rebind("SELECT id, name FROM authors WHERE id >= ?"), 1); err != nil {
		log.Fatal(err)
	}
	// x.DB is the idmap *sql.DB: Intern makes sqlx's objects canonical.
	if err := idmap.Intern(ctx, x.DB, authors); err != nil {
		log.Fatal(err)
	}
	// A named query: :name and :id become $1 and $2. The UPDATE goes
	// through idmap's driver and expires the key it names.
	if len(authors) > 0 {
		c := idmap.Copy(authors[0]) // the shared object is never written to
		c.Name = "anne"
		if _, err := x.NamedExecContext(ctx, "UPDATE authors SET name = :name WHERE id = :id", c); err != nil {
			log.Fatal(err)
		}
	}
}

// scany scans into structs as usual; idmap.Intern then replaces each object
// whose row is already in the map with the canonical object.
func Example_scany() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:interop_scany?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	bob, err := idmap.Get[Author](ctx, db, 2) // loaded by idmap first
	if err != nil {
		log.Fatal(err)
	}

	var authors []*Author
	if err := sqlscan.Select(ctx, db, &authors, "SELECT id, name FROM authors ORDER BY id"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("before Intern:", authors[1] == bob)
	if err := idmap.Intern(ctx, db, authors); err != nil {
		log.Fatal(err)
	}
	fmt.Println("same object:", authors[1] == bob)

	// The other rows were not in the map: scany's objects became canonical.
	cy, err := idmap.Get[Author](ctx, db, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Get returns scany's object:", cy == authors[2])
	// Output:
	// before Intern: false
	// same object: true
	// Get returns scany's object: true
}

// What sqlc generates (for SQLite, database/sql) from
//
//	-- name: GetAuthor :one
//	SELECT id, name FROM authors WHERE id = ?;
//
//	-- name: ListAuthors :many
//	SELECT id, name FROM authors ORDER BY id;
//
// Its model is a plain struct in the generated package: map it for idmap
// with a TableName method in a file of your own in that package, or with
// idmap.Model[db.Author](idmap.Table("authors")) at init (sqlc's field
// names, ID and Name, give the columns id and name). Here it is Author.

type DBTX interface {
	ExecContext(context.Context, string, ...interface{}) (sql.Result, error)
	PrepareContext(context.Context, string) (*sql.Stmt, error)
	QueryContext(context.Context, string, ...interface{}) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...interface{}) *sql.Row
}

func New(db DBTX) *Queries {
	return &Queries{db: db}
}

type Queries struct {
	db DBTX
}

const getAuthor = `-- name: GetAuthor :one
SELECT id, name FROM authors WHERE id = ?
`

func (q *Queries) GetAuthor(ctx context.Context, id int64) (Author, error) {
	row := q.db.QueryRowContext(ctx, getAuthor, id)
	var i Author
	err := row.Scan(&i.ID, &i.Name)
	return i, err
}

const listAuthors = `-- name: ListAuthors :many
SELECT id, name FROM authors ORDER BY id
`

func (q *Queries) ListAuthors(ctx context.Context) ([]Author, error) {
	rows, err := q.db.QueryContext(ctx, listAuthors)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []Author
	for rows.Next() {
		var i Author
		if err := rows.Scan(&i.ID, &i.Name); err != nil {
			return nil, err
		}
		items = append(items, i)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

// sqlc's generated functions return values; take their addresses and
// idmap.Intern makes them canonical.
func Example_sqlc() {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:interop_sqlc?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}
	q := New(db) // the generated code runs on the idmap *sql.DB

	list, err := q.ListAuthors(ctx)
	if err != nil {
		log.Fatal(err)
	}
	authors := make([]*Author, len(list))
	for i, a := range list {
		authors[i] = &a // a new variable in each iteration
	}
	if err := idmap.Intern(ctx, db, authors); err != nil {
		log.Fatal(err)
	}
	ann, err := idmap.Get[Author](ctx, db, 1) // no query: ann is in the map
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same object:", ann == authors[0])

	// One row: Intern a slice of one, and keep what it holds after.
	bob, err := q.GetAuthor(ctx, 2)
	if err != nil {
		log.Fatal(err)
	}
	one := []*Author{&bob}
	if err := idmap.Intern(ctx, db, one); err != nil {
		log.Fatal(err)
	}
	fmt.Println("GetAuthor, same object:", one[0] == authors[1], one[0].Name)
	// Output:
	// same object: true
	// GetAuthor, same object: true bob
}

// GORM runs on the idmap driver: its queries and writes go through idmap,
// so an Update expires the row it names, and the next idmap.Get reloads it.
func Example_gorm() {
	// A unit of work: a private map, whose objects are refreshed in place.
	// (In the shared map, which never writes to an object it handed out,
	// the reload makes a new object instead.)
	ctx := idmap.NewContext(context.Background())
	gdb, err := gorm.Open(sqlite.New(sqlite.Config{
		DriverName: "idmap+sqlite3", // GORM's SQL goes through idmap
		DSN:        "file:interop_gorm?mode=memory&cache=shared",
	}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	db, err := gdb.DB() // GORM's *sql.DB, for idmap.Get, Intern and Bind
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, authorsSchema); err != nil {
		log.Fatal(err)
	}

	var authors []*Author
	if err := gdb.WithContext(ctx).Order("id").Find(&authors).Error; err != nil {
		log.Fatal(err)
	}
	if err := idmap.Intern(ctx, db, authors); err != nil {
		log.Fatal(err)
	}
	ann, err := idmap.Get[Author](ctx, db, 1) // no query: ann is in the map
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same object:", ann == authors[0])

	// UPDATE authors SET name = ? WHERE id = ?: idmap expires author 1, and
	// only it.
	if err := gdb.WithContext(ctx).Model(&Author{}).Where("id = ?", 1).Update("name", "anne").Error; err != nil {
		log.Fatal(err)
	}
	fmt.Println("ann fresh:", idmap.Cached[Author](ctx, db, 1) != nil)
	fmt.Println("bob fresh:", idmap.Cached[Author](ctx, db, 2) != nil)
	ann, err = idmap.Get[Author](ctx, db, 1) // one query: the new name
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after the update:", ann.Name, ann == authors[0])

	// idmap.Bind also takes the rows of a GORM query.
	rows, err := gdb.WithContext(ctx).Model(&Author{}).Order("id").Rows()
	if err != nil {
		log.Fatal(err)
	}
	var again []*Author
	if err := idmap.Bind(rows, &again); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Bind, same object:", again[0] == ann)
	// Output:
	// same object: true
	// ann fresh: false
	// bob fresh: true
	// after the update: anne true
	// Bind, same object: true
}
