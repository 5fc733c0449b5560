package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/internal/fakedb"
	"github.com/go-idmap/idmap/signals"
)

type NoTable struct {
	ID int64
}

type NoPK struct {
	Name string
}

func (NoPK) TableName() string { return "users" }

type EmptyTable struct {
	ID int64
}

func (EmptyTable) TableName() string { return "" }

type Plain struct {
	ID   int64
	Name string
}

// ptrKey has a key that can be NULL.
type ptrKey struct {
	ID   *int64 `db:"id,pk"`
	Name string `db:"name"`
}

func (ptrKey) TableName() string { return "users" }

// badColumn's Name is not a plain name: quote it ("\"full name\"").
type badColumn struct {
	ID   int64  `db:"id"`
	Name string `db:"full name"`
}

func (badColumn) TableName() string { return "users" }

// Every bad input that SPEC.md lists gives an error that starts with
// "idmap:" and names what is at fault, never a panic, and caches nothing.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 2)
	mustExec(t, db, "CREATE TABLE nullpk (id INTEGER, name TEXT)")
	mustExec(t, db, "INSERT INTO nullpk VALUES (NULL, 'x')")
	plainDB, err := sql.Open("sqlite3", "file:"+t.TempDir()+"/plain.db")
	if err != nil {
		t.Fatal(err)
	}
	defer plainDB.Close()
	mustExec(t, plainDB, usersDDL)
	mustExec(t, plainDB, "INSERT INTO users (id, name) VALUES (1, 'p')")

	q := func(db *sql.DB, query string) *sql.Rows {
		rows, err := db.QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	const all = "SELECT id, name, email FROM users"
	var (
		users  []*User
		user   *User
		byVal  []User
		one    User
		notPtr []*User
	)
	cases := []struct {
		name string
		run  func() error
		want []string // substrings of the message
		is   error
	}{
		{"Bind nil dst", func() error { return idmap.Bind(q(db, all), nil) }, []string{"dst is nil"}, idmap.ErrBadDestination},
		{"Bind non-pointer dst", func() error { return idmap.Bind(q(db, all), notPtr) }, []string{"not a pointer", "[]*idmap_test.User"}, idmap.ErrBadDestination},
		{"Bind nil pointer dst", func() error { return idmap.Bind(q(db, all), (*[]*User)(nil)) }, []string{"nil *[]*idmap_test.User"}, idmap.ErrBadDestination},
		{"Bind ***T", func() error { u := &user; return idmap.Bind(q(db, all), &u) }, []string{"***idmap_test.User"}, idmap.ErrBadDestination},
		{"Bind mapped type in *[]T", func() error { return idmap.Bind(q(db, all), &byVal) }, []string{"idmap_test.User is mapped"}, idmap.ErrBadDestination},
		{"Bind mapped type in *T", func() error { return idmap.Bind(q(db, all), &one) }, []string{"idmap_test.User is mapped"}, idmap.ErrBadDestination},
		{"Bind rows of a plain database", func() error { return idmap.Bind(q(plainDB, all), &users) }, []string{"not produced by a database opened through idmap"}, idmap.ErrNotIdmap},
		{"Bind column with no field", func() error { return idmap.Bind(q(db, "SELECT id, name, 1 AS extra FROM users"), &users) }, []string{`column index 2, name "extra": no field in idmap_test.User`}, idmap.ErrNoField},
		{"Bind without key columns", func() error { return idmap.Bind(q(db, "SELECT name FROM users"), &users) }, []string{"lacks primary-key column(s) id of idmap_test.User"}, idmap.ErrKey},
		{"Bind NULL key", func() error { return idmap.Bind(q(db, "SELECT id, name FROM nullpk"), &users) }, []string{`NULL in primary-key column "id" of idmap_test.User`}, idmap.ErrKey},
		{"Bind mapped type without table", func() error { return idmap.Bind(q(db, "SELECT id FROM users"), new([]*EmptyTable)) }, []string{"idmap_test.EmptyTable"}, idmap.ErrNoTable},
		{"Bind mapped type without key", func() error { return idmap.Bind(q(db, "SELECT name FROM users"), new([]*NoPK)) }, []string{"idmap_test.NoPK"}, idmap.ErrNoPrimaryKey},
		{"Bind nil rows", func() error { return idmap.Bind(nil, &users) }, []string{"nil *sql.Rows"}, idmap.ErrBadDestination},
		{"Get too few key values", func() error { _, err := idmap.Get[User](ctx, db); return err }, []string{"idmap_test.User has 1 key column(s) (id), got 0"}, idmap.ErrKey},
		{"Get too many key values", func() error { _, err := idmap.Get[User](ctx, db, 1, 2); return err }, []string{"got 2"}, idmap.ErrKey},
		{"Get wrong key type", func() error { _, err := idmap.Get[User](ctx, db, "one"); return err }, []string{"idmap_test.User.ID", `"one" is not an integer`}, idmap.ErrKey},
		{"Get nil key", func() error { _, err := idmap.Get[User](ctx, db, nil); return err }, []string{"NULL"}, idmap.ErrKey},
		{"Get key overflow", func() error { _, err := idmap.Get[Small](ctx, db, 300); return err }, []string{"overflows int8"}, idmap.ErrKey},
		{"Get unmapped type", func() error { _, err := idmap.Get[NoTable](ctx, db, 1); return err }, []string{"idmap_test.NoTable has no TableName method"}, idmap.ErrNotMapped},
		{"Get mapped type without table", func() error { _, err := idmap.Get[EmptyTable](ctx, db, 1); return err }, []string{"idmap_test.EmptyTable"}, idmap.ErrNoTable},
		{"Get on a plain database", func() error { _, err := idmap.Get[User](ctx, plainDB, 1); return err }, []string{"not opened through idmap"}, idmap.ErrNotIdmap},
		{"Get nil Querier", func() error { _, err := idmap.Get[User](ctx, nil, 1); return err }, []string{"nil Querier"}, idmap.ErrNotIdmap},
		{"Get nil *sql.DB", func() error { _, err := idmap.Get[User](ctx, (*sql.DB)(nil), 1); return err }, []string{"nil Querier"}, idmap.ErrNotIdmap},
		{"Intern unmapped", func() error { return idmap.Intern(ctx, db, []*Plain{{ID: 1}}) }, []string{"idmap_test.Plain"}, idmap.ErrNotMapped},
		{"Intern on a plain database", func() error { return idmap.Intern(ctx, plainDB, []*User{{ID: 1}}) }, []string{"not opened through idmap"}, idmap.ErrNotIdmap},
		{"Open unknown base driver", func() error { _, err := idmap.Open("nosuchdriver", "x"); return err }, []string{`"nosuchdriver"`}, idmap.ErrUnknownDriver},
		{"sql.Open unregistered base", func() error {
			d, err := sql.Open("idmap+postgres", "postgres://u:secret@127.0.0.1/db")
			if err == nil {
				d.Close()
			}
			return err
		}, []string{`"postgres"`, `import _ "github.com/lib/pq"`}, idmap.ErrUnknownDriver},
		{"Dialect unknown", func() error { _, err := idmap.Open("sqlite3", ":memory:", idmap.Dialect("cobol")); return err }, []string{`unknown dialect "cobol"`}, nil},
		{"Bind duplicate column", func() error { return idmap.Bind(q(db, "SELECT id, name, upper(name) AS name FROM users"), &users) }, []string{`name "name"`, "idmap_test.User.Name"}, idmap.ErrDuplicateColumn},
		{"Bind duplicate column, unmapped", func() error { return idmap.Bind(q(db, "SELECT id, id FROM users"), new([]Plain)) }, []string{`name "id"`, "idmap_test.Plain.ID"}, idmap.ErrNoField},
		{"Get bad table name", func() error { _, err := idmap.Get[injDropQ](ctx, db, 1); return err }, []string{"idmap_test.injDropQ", "table name"}, idmap.ErrModel},
		{"Get bad column name", func() error { _, err := idmap.Get[badColumn](ctx, db, 1); return err }, []string{"idmap_test.badColumn.Name", `column name "full name"`}, idmap.ErrModel},
		{"Bind bad column name", func() error { return idmap.Bind(q(db, all), new([]*badColumn)) }, []string{"idmap_test.badColumn.Name"}, idmap.ErrModel},
		{"GetMany composite key not a slice", func() error { _, err := idmap.GetMany[Membership](ctx, db, 1); return err }, []string{"want a []any"}, idmap.ErrKey},
		{"Intern nil element", func() error { return idmap.Intern(ctx, db, []*User{nil}) }, []string{"element 0 is nil"}, idmap.ErrBadDestination},
		{"Intern NULL key", func() error { return idmap.Intern(ctx, db, []*ptrKey{{Name: "x"}}) }, []string{"element 0", "NULL"}, idmap.ErrKey},
		{"Intern bad key of a later element", func() error { return idmap.Intern(ctx, db, []*ptrKey{{ID: new(int64), Name: "a"}, {Name: "x"}}) }, []string{"element 1", "NULL"}, idmap.ErrKey},
		{"NoAutoFlush of a reason that is not automatic", func() error {
			_, err := idmap.Open("sqlite3", ":memory:", idmap.NoAutoFlush(signals.Manual))
			return err
		}, []string{"NoAutoFlush"}, nil},
		{"NewConnector nil", func() error { return sql.OpenDB(idmap.NewConnector(nil)).Ping() }, []string{"nil connector"}, nil},
		{"Bind scan error", func() error {
			return idmap.Bind(q(db, "SELECT id, name AS visits_n FROM users"), new([]struct {
				ID      int64
				VisitsN int
			}))
		}, []string{"visits_n"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				err = c.run()
			}()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "idmap:") {
				t.Errorf("error %q does not start with idmap:", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", msg, c.is)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("error %q shows a password", msg)
			}
		})
	}
	if c := idmap.Cached[User](ctx, db, 1); c != nil {
		t.Errorf("a failed call cached %+v", c)
	}
}

type Small struct {
	ID int8 `db:"id"`
}

func (Small) TableName() string { return "users" }

// Field types: Scanner, sql.Null*, pointers, time.Time, []byte (copied),
// embedded structs, snake_case names, db:"-" and unexported fields.
type Base struct {
	ID        int64     `db:"id"`
	CreatedAt time.Time // created_at
}

type Doc struct {
	Base
	Title    string
	Body     []byte
	Score    sql.NullFloat64
	Parent   *int64   `db:"parent_id"`
	Meta     upper    `db:"meta"`
	internal int      //lint:ignore U1000 an unexported field, which Bind must leave alone
	Temp     string   `db:"-"`
	Children []*Doc   // not a column: not scannable
	Next     *Doc     // not a column
	Tags     []string // not a column
}

func (Doc) TableName() string { return "docs" }

// upper is a Scanner that upper-cases what it scans.
type upper string

func (u *upper) Scan(v any) error {
	switch x := v.(type) {
	case string:
		*u = upper(strings.ToUpper(x))
	case []byte:
		*u = upper(strings.ToUpper(string(x)))
	case nil:
		*u = ""
	}
	return nil
}

func TestBindFieldTypes(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	mustExec(t, db, `CREATE TABLE docs (id INTEGER PRIMARY KEY, created_at TIMESTAMP, title TEXT, body BLOB, score REAL, parent_id INTEGER, meta TEXT)`)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	mustExec(t, db, `INSERT INTO docs VALUES (1, ?, 'one', x'0102', 1.5, NULL, 'abc'), (2, ?, 'two', x'0304', NULL, 1, NULL)`, now, now)
	rows, err := db.QueryContext(ctx, "SELECT * FROM docs ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var docs []*Doc
	if err := idmap.Bind(rows, &docs); err != nil {
		t.Fatal(err)
	}
	d1, d2 := docs[0], docs[1]
	if d1.ID != 1 || !d1.CreatedAt.Equal(now) || d1.Title != "one" || string(d1.Body) != "\x01\x02" ||
		!d1.Score.Valid || d1.Score.Float64 != 1.5 || d1.Parent != nil || d1.Meta != "ABC" {
		t.Errorf("row 1: got %+v", d1)
	}
	if d2.Score.Valid || d2.Parent == nil || *d2.Parent != 1 || string(d2.Body) != "\x03\x04" {
		t.Errorf("row 2: got %+v", d2)
	}
	if &d1.Body[0] == &d2.Body[0] {
		t.Error("two rows share one []byte buffer")
	}
}

// Unmapped types: *[]T, *T, *[]*T and **T; structs and single columns.
func TestBindUnmapped(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 3)
	rows := func(q string) *sql.Rows {
		r, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var ps []Plain
	if err := idmap.Bind(rows("SELECT id, name FROM users ORDER BY id"), &ps); err != nil || len(ps) != 3 || ps[2].Name != "user3" {
		t.Errorf("*[]T: got %v, %v", ps, err)
	}
	var pp []*Plain
	if err := idmap.Bind(rows("SELECT id, name FROM users ORDER BY id"), &pp); err != nil || len(pp) != 3 {
		t.Errorf("*[]*T: got %v, %v", pp, err)
	}
	var p Plain
	if err := idmap.Bind(rows("SELECT id, name FROM users ORDER BY id DESC"), &p); err != nil || p.ID != 3 {
		t.Errorf("*T: got %v, %v", p, err)
	}
	var names []string
	if err := idmap.Bind(rows("SELECT name FROM users ORDER BY id"), &names); err != nil || strings.Join(names, ",") != "user1,user2,user3" {
		t.Errorf("*[]string: got %v, %v", names, err)
	}
	var n int
	if err := idmap.Bind(rows("SELECT count(*) FROM users"), &n); err != nil || n != 3 {
		t.Errorf("*int: got %v, %v", n, err)
	}
	var none *Plain
	if err := idmap.Bind(rows("SELECT id, name FROM users WHERE id > 10"), &none); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("**T with no rows: got %v; want sql.ErrNoRows", err)
	}
	var empty []*User
	if err := idmap.Bind(rows("SELECT id, name FROM users WHERE id > 10"), &empty); err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("*[]*T with no rows: got %#v, %v; want an empty slice", empty, err)
	}
}

// A Bind that fails part way (a driver error on the third row, a conversion
// error) adds and changes nothing in any map, and closes the rows.
func TestFailedBindChangesNothing(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := scopedCtx(scoped)
		db := openSQLite(t)
		seedUsers(t, db, 4)
		mustExec(t, db, "UPDATE users SET email = 'not-a-number' WHERE id = 3")
		u2, err := idmap.Get[User](ctx, db, 2)
		if err != nil {
			t.Fatal(err)
		}
		// Expire u2 so that a load would refresh it.
		mustExec(t, db, "UPDATE users SET name = 'new2' WHERE id = 2")

		queries := map[string]string{
			// SQLite raises the overflow when it computes the third row.
			"driver error on row 3": "SELECT id, name, email FROM users WHERE CASE WHEN id = 3 THEN abs(-9223372036854775808) ELSE 1 END ORDER BY id",
		}
		for name, query := range queries {
			rows, err := db.QueryContext(ctx, query)
			if err != nil {
				t.Fatal(err)
			}
			var us []*User
			if err := idmap.Bind(rows, &us); err == nil {
				t.Fatalf("%s: no error", name)
			}
			if rows.Next() {
				t.Errorf("%s: rows left open", name)
			}
			if us != nil {
				t.Errorf("%s: dst was written", name)
			}
		}
		// A conversion error: email into an int field.
		type Conv struct {
			ID    int64 `db:"id"`
			Email int   `db:"email"`
		}
		rows, err := db.QueryContext(ctx, "SELECT id, email FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var cs []*Conv
		if err := idmap.Bind(rows, &cs); err == nil || !strings.HasPrefix(err.Error(), "idmap:") {
			t.Errorf("conversion error: got %v", err)
		}
		for id := int64(1); id <= 4; id++ {
			if c := idmap.Cached[User](ctx, db, id); c != nil {
				t.Errorf("scoped=%v: a failed Bind left user %d in the map", scoped, id)
			}
		}
		if u2.Name != "user2" {
			t.Errorf("scoped=%v: a failed Bind refreshed an object: %q", scoped, u2.Name)
		}
	}
}

// Partial rows return canonical objects but are never served as complete.
func TestPartialRows(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, count := openCounted(t)
	seedUsers(t, db, 1)
	p := queryUsers(t, ctx, db, "SELECT id, name FROM users")[0]
	if p.Email != "" {
		t.Fatal("a partial row filled a column it lacked")
	}
	if idmap.Cached[User](ctx, db, 1) != nil {
		t.Error("a partial object is served as complete")
	}
	before := count.Queries()
	full, err := idmap.Get[User](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if count.Queries()-before != 1 || full != p || full.Email != "u1@example.com" {
		t.Errorf("Get over a partial entry: got %p %+v; want one query and %p completed", full, full, p)
	}
	if idmap.Cached[User](ctx, db, 1) != p {
		t.Error("a completed object is not served")
	}
}

// Concurrent first loads of one key give one pointer, in the shared map and
// in a scope shared by goroutines.
func TestConcurrentFirstLoads(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := scopedCtx(scoped)
		db := openSQLite(t)
		seedUsers(t, db, 5)
		const n = 8
		got := make([][]*User, n)
		done := make(chan int)
		for g := range n {
			go func() {
				rows, err := db.QueryContext(ctx, "SELECT id, name, email FROM users ORDER BY id")
				if err == nil {
					err = idmap.Bind(rows, &got[g])
				}
				if err != nil {
					t.Error(err)
				}
				done <- g
			}()
		}
		for range n {
			<-done
		}
		for g := 1; g < n; g++ {
			for i := range got[0] {
				if got[g][i] != got[0][i] {
					t.Fatalf("scoped=%v: goroutines %d and 0 got different objects for row %d", scoped, g, i)
				}
			}
		}
	}
}

// nilCtx is a nil context, which callers pass by mistake.
var nilCtx context.Context

// Nil contexts and odd destinations give errors or work; nothing panics.
func TestNoPanicOnOddInput(t *testing.T) {
	db := openSQLite(t)
	seedUsers(t, db, 1)
	for name, f := range map[string]func(){
		"NewContext(nil)":    func() { _ = idmap.NewContext(nilCtx) },
		"WithRefresh(nil)":   func() { _ = idmap.WithRefresh(nilCtx) },
		"Get nil ctx":        func() { _, _ = idmap.Get[User](nilCtx, db, 1) },
		"GetMany nil ctx":    func() { _, _ = idmap.GetMany[User](nilCtx, db, 1) },
		"Cached nil ctx":     func() { _ = idmap.Cached[User](nilCtx, db, 1) },
		"Cached nil db":      func() { _ = idmap.Cached[User](context.Background(), nil, 1) },
		"Intern nil ctx":     func() { _ = idmap.Intern(nilCtx, db, []*User{{ID: 5}}) },
		"Flush nil ctx":      func() { idmap.Flush(nilCtx) },
		"FlushType nil ctx":  func() { idmap.FlushType[User](nilCtx) },
		"FlushInstance nil":  func() { idmap.FlushInstance(context.Background(), nil) },
		"FlushInstance int":  func() { idmap.FlushInstance(context.Background(), 3) },
		"FlushInstance *int": func() { idmap.FlushInstance(context.Background(), new(int)) },
		"Get pointer type":   func() { _, _ = idmap.Get[*User](context.Background(), db, 1) },
		"Bind into map": func() {
			rows, err := db.Query("SELECT id FROM users")
			if err == nil {
				var m map[string]any
				_ = idmap.Bind(rows, &m)
			}
		},
		"Bind into func": func() {
			rows, err := db.Query("SELECT id FROM users")
			if err == nil {
				var f func()
				_ = idmap.Bind(rows, &f)
			}
		},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic: %v", name, r)
				}
			}()
			f()
		}()
	}
}

// SPEC's django-idmap table, row "temporary attributes survive a second
// load".
func TestTemporaryFieldSurvivesReload(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := scopedCtx(scoped)
		db := openSQLite(t)
		seedUsers(t, db, 3)
		u := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id = ?", 2)[0]
		u.Visits = 41
		again := queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
		if again[1] != u || again[1].Visits != 41 {
			t.Errorf("scoped=%v: got %p visits=%d; want %p visits=41", scoped, again[1], again[1].Visits, u)
		}
		mustExec(t, db, "UPDATE users SET name = 'renamed' WHERE id = 2")
		r := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id = 2")[0]
		if scoped {
			// A refresh in a scope keeps the pointer and the temporary field.
			if r != u || r.Name != "renamed" || r.Visits != 41 {
				t.Errorf("refresh in scope: got %p %+v; want %p renamed, visits 41", r, r, u)
			}
		} else {
			// The shared map never writes to an object handed out: a new
			// object, which keeps the temporary field.
			if r == u || r.Name != "renamed" || r.Visits != 41 || u.Name != "user2" {
				t.Errorf("refresh in shared map: got %p %+v (old %+v); want a new object, renamed, visits 41", r, r, u)
			}
		}
	}
}

func TestWithRefreshAndLockingRead(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db := openSQLite(t)
	seedUsers(t, db, 1)
	u, _ := idmap.Get[User](ctx, db, 1)
	// Change the row behind idmap's back (a raw connection).
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		bc := dc.(interface{ Unwrap() driver.Conn }).Unwrap()
		ex := bc.(driver.ExecerContext)
		_, err := ex.ExecContext(ctx, "UPDATE users SET name = 'behind' WHERE id = 1", nil)
		return err
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := idmap.Get[User](ctx, db, 1); got.Name != "user1" {
		t.Fatalf("a write behind idmap's back was seen: %q", got.Name)
	}
	got, err := idmap.Get[User](idmap.WithRefresh(ctx), db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got != u || u.Name != "behind" {
		t.Errorf("WithRefresh: got %p %q; want %p refreshed to behind", got, got.Name, u)
	}
}

// Locking reads are never answered from the map and refresh what they load.
func TestLockingReadRefreshes(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindQuery {
			name := "plain"
			if q.SQL != "SELECT id, name, email FROM users" {
				name = "locked"
			}
			return &fakedb.Result{Columns: []string{"id", "name", "email"}, Rows: [][]driver.Value{{int64(1), name, ""}}}, nil
		}
		return nil, nil
	})
	db := sql.OpenDB(idmap.NewConnector(fd.Connector(), idmap.Dialect("postgres")))
	defer db.Close()
	u := queryUsers(t, ctx, db, "SELECT id, name, email FROM users")[0]
	require.Equal(t, "plain", u.Name)
	l := queryUsers(t, ctx, db, "SELECT id, name, email FROM users FOR UPDATE")[0]
	require.Same(t, u, l)
	require.Equal(t, "locked", u.Name, "a locking read did not refresh")
}
