package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/internal/fakedb"
)

func TestDriversRegistered(t *testing.T) {
	drivers := sql.Drivers()
	for _, want := range []string{"idmap+sqlite3", "idmap+sqlite", "idmap+mysql", "idmap+pgx", "idmap+postgres"} {
		if !slices.Contains(drivers, want) {
			t.Errorf("%s is not registered", want)
		}
	}
	if got := idmap.Register("sqlite3"); got != "idmap+sqlite3" {
		t.Errorf("Register(sqlite3) = %q", got)
	}
	if got := idmap.Register("sqlite3"); got != "idmap+sqlite3" { // idempotent: no panic
		t.Errorf("Register twice = %q", got)
	}
}

// fakeRows answers every query with two rows and column types, and every
// exec with one affected row.
func fakeRows(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
	switch q.Kind {
	case fakedb.KindQuery:
		if strings.Contains(q.SQL, "fail") {
			return nil, errors.New("query failed")
		}
		return &fakedb.Result{
			Columns: []string{"id", "name", "email"},
			Rows:    [][]driver.Value{{int64(1), "ann", "a@x"}, {int64(2), "bob", "b@x"}},
			Types: []fakedb.ColumnType{
				{DatabaseTypeName: "INT", HasLength: true, Length: 8, HasNullable: true, Precision: 10, HasPrecisionScale: true, ScanType: reflect.TypeFor[int64]()},
				{DatabaseTypeName: "TEXT", HasLength: true, Length: 100, HasNullable: true, Nullable: true, ScanType: reflect.TypeFor[string]()},
				{DatabaseTypeName: "TEXT"},
			},
			NextSet: &fakedb.Result{Columns: []string{"n"}, Rows: [][]driver.Value{{int64(7)}}},
		}, nil
	case fakedb.KindExec:
		return &fakedb.Result{RowsAffected: 1}, nil
	}
	return nil, nil
}

// Open and sql.Open do not connect.
func TestOpenDoesNotConnect(t *testing.T) {
	fd := fakedb.New(fakeRows)
	name := fd.Register()
	db, err := idmap.Open(name, "dsn")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idmap.Register(name)
	db2, err := sql.Open("idmap+"+name, "dsn")
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if n := fd.Stats().ConnsOpened; n != 0 {
		t.Errorf("opened %d connections; want 0", n)
	}
	if err := db2.Ping(); err != nil {
		t.Fatal(err)
	}
	if n := fd.Stats().ConnsOpened; n != 1 {
		t.Errorf("after Ping: %d connections; want 1", n)
	}
}

type valuer struct{ s string }

func (v valuer) Value() (driver.Value, error) { return "v:" + v.s, nil }

// transcript runs the same work through db and returns what the program saw
// and what the driver received.
func transcript(t *testing.T, db *sql.DB, fd *fakedb.Driver) []string {
	ctx := context.Background()
	var out []string
	say := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	res, err := db.ExecContext(ctx, "UPDATE t SET a = ? WHERE id = ?", valuer{"x"}, 5)
	if err == nil {
		n, _ := res.RowsAffected()
		say("exec: %d", n)
	} else {
		say("exec error: %v", err)
	}
	_, err = db.ExecContext(ctx, "UPDATE t SET a = ?", struct{}{})
	say("exec bad arg: %v", err)
	rows, err := db.QueryContext(ctx, "SELECT id, name, email FROM t WHERE id > ?", int32(0))
	if err != nil {
		say("query error: %v", err)
	} else {
		cts, _ := rows.ColumnTypes()
		for _, ct := range cts {
			l, lok := ct.Length()
			n, nok := ct.Nullable()
			p, s, pok := ct.DecimalSize()
			say("column %s %s len=%d,%v null=%v,%v dec=%d,%d,%v scan=%v", ct.Name(), ct.DatabaseTypeName(), l, lok, n, nok, p, s, pok, ct.ScanType())
		}
		for rows.Next() {
			var id int64
			var name, email string
			if err := rows.Scan(&id, &name, &email); err != nil {
				say("scan: %v", err)
			}
			say("row %d %s %s", id, name, email)
		}
		say("next set: %v", rows.NextResultSet())
		for rows.Next() {
			var n int64
			rows.Scan(&n)
			say("set 2 row %d", n)
		}
		say("rows err: %v close: %v", rows.Err(), rows.Close())
	}
	stmt, err := db.PrepareContext(ctx, "SELECT id, name, email FROM t WHERE id = ?")
	if err != nil {
		say("prepare error: %v", err)
	} else {
		r, err := stmt.QueryContext(ctx, uint8(1))
		if err == nil {
			cols, _ := r.Columns()
			say("stmt query columns %v", cols)
			r.Close()
		} else {
			say("stmt query error: %v", err)
		}
		_, err = stmt.ExecContext(ctx, valuer{"y"})
		say("stmt exec: %v", err)
		stmt.Close()
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err == nil {
		_, err = tx.ExecContext(ctx, "DELETE FROM t WHERE id = ?", 3)
		say("tx exec: %v commit: %v", err, tx.Commit())
	} else {
		say("begin error: %v", err)
	}
	say("ping: %v", db.PingContext(ctx))
	for _, q := range fd.Log() {
		if q.Kind == fakedb.KindConnect || q.Kind == fakedb.KindIsValid || q.Kind == fakedb.KindResetSession {
			continue // pool bookkeeping, not what the program asked for
		}
		say("driver: %v %q stmt=%v tx=%v args=%s", q.Kind, q.SQL, q.Stmt, q.InTx, describeArgs(q.Args))
	}
	return out
}

func describeArgs(args []driver.NamedValue) string {
	var b strings.Builder
	for _, a := range args {
		fmt.Fprintf(&b, "%d:%T(%v) ", a.Ordinal, a.Value, a.Value)
	}
	return b.String()
}

// Behind idmap, a driver behaves as it does alone, whatever optional
// interfaces it lacks: where sqlmw's connection or statement claims one that
// the base lacks, its fallback must do what database/sql does without it.
func TestDriverBehavesAsBase(t *testing.T) {
	checker := func(nv *driver.NamedValue) error {
		if s, ok := nv.Value.(string); ok {
			nv.Value = "checked:" + s
			return nil
		}
		return driver.ErrSkip
	}
	converter := func(int) driver.ValueConverter { return upperConverter{} }
	for _, caps := range fakedb.Variants() {
		t.Run(caps.String(), func(t *testing.T) {
			opts := []fakedb.Option{fakedb.WithCaps(caps), fakedb.WithCheckNamedValue(checker), fakedb.WithColumnConverter(converter), fakedb.WithNumInput(func(string) int { return 1 })}
			plain := fakedb.New(fakeRows, opts...)
			wrapped := fakedb.New(fakeRows, opts...)
			pdb := sql.OpenDB(plain.Connector())
			defer pdb.Close()
			wdb := sql.OpenDB(idmap.NewConnector(wrapped.Connector()))
			defer wdb.Close()
			want := transcript(t, pdb, plain)
			got := transcript(t, wdb, wrapped)
			if d := diffLines(want, got); d != "" {
				t.Errorf("behind idmap, the driver behaves differently:\n%s", d)
			}
			if err := wrapped.CheckLeaks(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestProbeEveryDriverShape: Get, Cached and Intern find the map of a
// *sql.Tx and of a *sql.Conn on a base driver of every shape: through an
// Exec that the interceptor answers where the base has ExecerContext, else
// through the prepared or queried probe.
func TestProbeEveryDriverShape(t *testing.T) {
	ctx := context.Background()
	for _, caps := range fakedb.Variants() {
		t.Run(caps.String(), func(t *testing.T) {
			fdb := fakedb.New(fakeRows, fakedb.WithCaps(caps))
			db := sql.OpenDB(idmap.NewConnector(fdb.Connector(), idmap.Name("probe-"+caps.String()), idmap.Dialect("sqlite")))
			defer db.Close()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			u := &User{ID: 7, Name: "tx"}
			objs := []*User{u}
			if err := idmap.Intern(ctx, tx, objs); err != nil {
				t.Fatalf("Intern through a Tx: %v", err)
			}
			if got := idmap.Cached[User](ctx, tx, 7); got != u {
				t.Errorf("Cached through the Tx = %p, want the interned %p", got, u)
			}
			if got, err := idmap.Get[User](ctx, tx, 7); err != nil || got != u {
				t.Errorf("Get through the Tx = %p, %v; want the interned %p", got, err, u)
			}
			if got := idmap.Cached[User](ctx, db, 7); got != nil {
				t.Error("the transaction's object is in the shared map")
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}

			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sctx := idmap.NewContext(ctx)
			v := &User{ID: 8, Name: "conn"}
			if err := idmap.Intern(sctx, c, []*User{v}); err != nil {
				t.Fatalf("Intern through a Conn: %v", err)
			}
			if got := idmap.Cached[User](sctx, c, 8); got != v {
				t.Errorf("Cached through the Conn in the scope = %p, want the interned %p", got, v)
			}
			if got := idmap.Cached[User](sctx, db, 8); got != v {
				t.Errorf("Cached through the database in the scope = %p, want the interned %p", got, v)
			}
			if got := idmap.Cached[User](ctx, c, 8); got != nil {
				t.Error("the scope's object is in the shared map")
			}
		})
	}
}

type upperConverter struct{}

func (upperConverter) ConvertValue(v any) (driver.Value, error) {
	if s, ok := v.(string); ok {
		return strings.ToUpper(s), nil
	}
	return driver.DefaultParameterConverter.ConvertValue(v)
}

func diffLines(want, got []string) string {
	var b strings.Builder
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			fmt.Fprintf(&b, "  line %d\n    want %s\n    got  %s\n", i, w, g)
		}
	}
	return b.String()
}

// The rows that database/sql sees expose exactly the optional interfaces of
// the base driver's rows.
func TestRowsInterfacesPreserved(t *testing.T) {
	ifaces := map[fakedb.Caps]reflect.Type{
		fakedb.CapRowsNextResultSet:              reflect.TypeFor[driver.RowsNextResultSet](),
		fakedb.CapRowsColumnTypeDatabaseTypeName: reflect.TypeFor[driver.RowsColumnTypeDatabaseTypeName](),
		fakedb.CapRowsColumnTypeLength:           reflect.TypeFor[driver.RowsColumnTypeLength](),
		fakedb.CapRowsColumnTypeNullable:         reflect.TypeFor[driver.RowsColumnTypeNullable](),
		fakedb.CapRowsColumnTypePrecisionScale:   reflect.TypeFor[driver.RowsColumnTypePrecisionScale](),
		fakedb.CapRowsColumnTypeScanType:         reflect.TypeFor[driver.RowsColumnTypeScanType](),
	}
	ctx := context.Background()
	for rc := fakedb.Caps(0); rc <= fakedb.RowsCaps; rc++ {
		if rc&^fakedb.RowsCaps != 0 {
			continue
		}
		caps := fakedb.AllCaps&^fakedb.RowsCaps | rc
		fd := fakedb.New(fakeRows, fakedb.WithCaps(caps))
		db := sql.OpenDB(idmap.NewConnector(fd.Connector()))
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = conn.Raw(func(dc any) error {
			r, err := dc.(driver.QueryerContext).QueryContext(ctx, "SELECT 1", nil)
			if err != nil {
				return err
			}
			defer r.Close()
			for flag, it := range ifaces {
				if got, want := reflect.TypeOf(r).Implements(it), caps.Has(flag); got != want {
					t.Errorf("rows caps %v: implements %v = %v; want %v", rc, it, got, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		db.Close()
	}
}

// sql.Conn.Raw reaches the base driver's connection through Unwrap.
func TestRawUnwrap(t *testing.T) {
	ctx := context.Background()
	fd := fakedb.New(fakeRows)
	db := sql.OpenDB(idmap.NewConnector(fd.Connector()))
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		u, ok := dc.(interface{ Unwrap() driver.Conn })
		if !ok {
			return fmt.Errorf("%T has no Unwrap method", dc)
		}
		if pkg := reflect.TypeOf(u.Unwrap()).String(); !strings.Contains(pkg, "fakedb") {
			return fmt.Errorf("Unwrap returned %s; want the fakedb connection", pkg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// database/sql returns the driver's column slice as it is from
// Rows.Columns: Bind relies on it to find its database. If a Go release
// starts copying the slice, this test fails, and Bind needs another way.
func TestColumnsSliceIdentity(t *testing.T) {
	cols := []string{"a", "b"}
	fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		return &fakedb.Result{Columns: cols, Rows: [][]driver.Value{{int64(1), int64(2)}}}, nil
	}, fakedb.WithCaps(fakedb.Minimal|fakedb.CapQueryerContext))
	db := sql.OpenDB(fd.Connector())
	defer db.Close()
	rows, err := db.Query("SELECT a, b")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	// fakedb may copy; compare with what its rows returned, via idmap.
	wdb := sql.OpenDB(idmap.NewConnector(fakedb.New(fakeRows).Connector()))
	defer wdb.Close()
	wrows, err := wdb.Query("SELECT id, name, email FROM t")
	if err != nil {
		t.Fatal(err)
	}
	var us []*User
	if err := idmap.Bind(wrows, &us); err != nil {
		t.Fatalf("Bind could not find its database: %v (does (*sql.Rows).Columns still return the driver's slice? %v)", err, got)
	}
}

// NewConnector wraps a driver.Connector: sql.OpenDB(idmap.NewConnector(
// mysql.NewConnector(cfg))) works, names the database without its password
// and speaks MySQL.
func TestNewConnectorMySQL(t *testing.T) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "u", "secret", "tcp", "127.0.0.1:1", "app"
	mc, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(idmap.NewConnector(mc))
	defer db.Close()
	name := idmap.NameOf(db)
	if name == "" || strings.Contains(name, "secret") {
		t.Errorf("NameOf = %q", name)
	}
	named := sql.OpenDB(idmap.NewConnector(mc, idmap.Name("primary")))
	defer named.Close()
	if got := idmap.NameOf(named); got != "primary" {
		t.Errorf("NameOf with Name option = %q", got)
	}
	if idmap.NameOf(nil) != "" {
		t.Error("NameOf(nil) is not empty")
	}
}

// Get's SQL quotes identifiers for the dialect and passes keys as arguments.
// A quoted name (here with a quote character doubled inside) is requoted
// for the dialect; a keyword as a column name is quoted too.
type Quoted struct {
	ID    int64  `db:"id"`
	Order string `db:"order"`
}

func (Quoted) TableName() string { return `"my""table"` }

func TestGetSQLPerDialect(t *testing.T) {
	for _, c := range []struct{ dialect, want string }{
		{"sqlite", `SELECT "id", "order" FROM "my""table" WHERE "id" = ?`},
		{"mysql", "SELECT `id`, `order` FROM `my\"table` WHERE `id` = ?"},
		{"postgres", `SELECT "id", "order" FROM "my""table" WHERE "id" = $1`},
		{"", `SELECT "id", "order" FROM "my""table" WHERE "id" = ?`},
	} {
		fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
			if q.Kind == fakedb.KindQuery {
				return &fakedb.Result{Columns: []string{"id", "order"}, Rows: [][]driver.Value{{int64(1), "x"}}}, nil
			}
			return nil, nil
		})
		var opts []idmap.Option
		if c.dialect != "" {
			opts = append(opts, idmap.Dialect(c.dialect))
		}
		db := sql.OpenDB(idmap.NewConnector(fd.Connector(), opts...))
		if _, err := idmap.Get[Quoted](context.Background(), db, "1"); err != nil {
			t.Fatal(err)
		}
		log := fd.Log(fakedb.KindQuery)
		if len(log) != 1 || log[0].SQL != c.want || len(log[0].Args) != 1 || log[0].Args[0].Value != int64(1) {
			t.Errorf("dialect %q: got %v; want %s with argument 1", c.dialect, log, c.want)
		}
		db.Close()
	}
}

// driver.ErrBadConn: database/sql retries on a new connection; Bind works.
func TestBadConnRetry(t *testing.T) {
	ctx := context.Background()
	fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindQuery && q.ConnID == 1 {
			return nil, driver.ErrBadConn
		}
		return fakeRows(ctx, q)
	})
	db := sql.OpenDB(idmap.NewConnector(fd.Connector()))
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT id, name, email FROM users")
	if err != nil {
		t.Fatal(err)
	}
	var us []*User
	if err := idmap.Bind(rows, &us); err != nil || len(us) != 2 {
		t.Fatalf("got %v, %v", us, err)
	}
	if idmap.Cached[User](ctx, db, 1) != us[0] {
		t.Error("rows from the retried query were not cached")
	}
}

// Faults in the middle of rows: an error on the third row, a panic in
// Next. Nothing reaches the map.
func TestFaultsMidRows(t *testing.T) {
	ctx := context.Background()
	mk := func(res *fakedb.Result) *sql.DB {
		fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
			if q.Kind == fakedb.KindQuery {
				r := *res
				return &r, nil
			}
			return nil, nil
		})
		db := sql.OpenDB(idmap.NewConnector(fd.Connector()))
		t.Cleanup(func() { db.Close() })
		return db
	}
	base := fakedb.Result{
		Columns: []string{"id", "name", "email"},
		Rows:    [][]driver.Value{{int64(1), "a", ""}, {int64(2), "b", ""}, {int64(3), "c", ""}, {int64(4), "d", ""}},
	}
	boom := errors.New("boom on row 3")
	r := base
	r.ErrAt, r.RowErr = 3, boom
	db := mk(&r)
	rows, err := db.QueryContext(ctx, "SELECT id, name, email FROM users")
	if err != nil {
		t.Fatal(err)
	}
	var us []*User
	if err := idmap.Bind(rows, &us); !errors.Is(err, boom) {
		t.Errorf("error on row 3: got %v; want %v unchanged", err, boom)
	}
	for id := 1; id <= 4; id++ {
		if idmap.Cached[User](ctx, db, id) != nil {
			t.Errorf("row %d cached by a failed Bind", id)
		}
	}

	p := base
	p.PanicAt = 2
	db = mk(&p)
	rows, err = db.QueryContext(ctx, "SELECT id, name, email FROM users")
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a driver panic did not propagate")
			}
		}()
		idmap.Bind(rows, &us)
	}()
	if idmap.Cached[User](ctx, db, 1) != nil {
		t.Error("row 1 cached by a Bind that panicked")
	}

	// Reused driver buffers: []byte fields are copied.
	type Blob struct {
		ID   int64  `db:"id"`
		Data []byte `db:"data"`
	}
	fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindQuery {
			return &fakedb.Result{Columns: []string{"id", "data"}, ReuseBuffers: true,
				Rows: [][]driver.Value{{int64(1), []byte("one")}, {int64(2), []byte("two")}}}, nil
		}
		return nil, nil
	})
	bdb := sql.OpenDB(idmap.NewConnector(fd.Connector()))
	defer bdb.Close()
	rows, err = bdb.QueryContext(ctx, "SELECT id, data FROM blobs")
	if err != nil {
		t.Fatal(err)
	}
	var bs []*Blob
	if err := idmap.Bind(rows, &bs); err != nil {
		t.Fatal(err)
	}
	if string(bs[0].Data) != "one" || string(bs[1].Data) != "two" {
		t.Errorf("[]byte aliased a driver buffer: %q %q", bs[0].Data, bs[1].Data)
	}
}

// A caller that appends to the slice Columns returned writes into its spare
// capacity, where the rows keep what Bind finds them by: Bind still finds
// them, and the caller's slice keeps what it appended. A plain driver's
// slice with spare capacity is not taken for idmap's, whatever it holds.
func TestColumnsAppend(t *testing.T) {
	db := sql.OpenDB(idmap.NewConnector(fakedb.New(fakeRows).Connector()))
	defer db.Close()
	rows, err := db.Query("SELECT id, name, email FROM t")
	if err != nil {
		t.Fatal(err)
	}
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	mine := append(cols, "x", "y")
	var us []*User
	if err := idmap.Bind(rows, &us); err != nil {
		t.Fatalf("Bind after an append to Columns: %v", err)
	}
	if len(us) != 2 || mine[3] != "x" || mine[4] != "y" {
		t.Errorf("got %d users, appended %q; want 2 users, [x y]", len(us), mine[3:])
	}

	spare := make([]string, 3, 8)
	copy(spare, []string{"id", "name", "email"})
	plain := sql.OpenDB(fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		return &fakedb.Result{Columns: spare, Rows: [][]driver.Value{{int64(1), "ann", "a@x"}}}, nil
	}).Connector())
	defer plain.Close()
	prs, err := plain.Query("SELECT")
	if err != nil {
		t.Fatal(err)
	}
	if err := idmap.Bind(prs, &us); !errors.Is(err, idmap.ErrNotIdmap) {
		t.Errorf("Bind of a plain driver's rows: got %v; want ErrNotIdmap", err)
	}
	prs.Close()
}
