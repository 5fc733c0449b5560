package fakedb_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-idmap/idmap/internal/fakedb"
)

// openDB opens d through its connector. At cleanup it closes the database
// and checks that nothing leaked.
func openDB(t *testing.T, d *fakedb.Driver) *sql.DB {
	t.Helper()
	db := sql.OpenDB(d.Connector())
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("db.Close: %v", err)
		}
		if err := d.CheckLeaks(); err != nil {
			t.Error(err)
		}
		if n := d.Stats().OpenConns; n != 0 {
			t.Errorf("OpenConns after db.Close = %d; want 0", n)
		}
	})
	return db
}

// users answers every query with three users.
func users(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
	if q.Kind != fakedb.KindQuery {
		return nil, nil
	}
	return &fakedb.Result{
		Columns: []string{"id", "name"},
		Rows:    [][]driver.Value{{int64(1), "ann"}, {int64(2), "bob"}, {int64(3), "cy"}},
	}, nil
}

// scanUsers reads rows of (id, name) and closes them.
func scanUsers(t *testing.T, rows *sql.Rows) ([]string, error) {
	t.Helper()
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatalf("Scan: %v", err)
		}
		got = append(got, fmt.Sprintf("%d %s", id, name))
	}
	return got, rows.Err()
}

func TestScriptedRows(t *testing.T) {
	for _, caps := range []fakedb.Caps{fakedb.AllCaps, fakedb.Minimal} {
		t.Run(caps.String(), func(t *testing.T) {
			d := fakedb.New(users, fakedb.WithCaps(caps))
			db := openDB(t, d)
			rows, err := db.QueryContext(t.Context(), "SELECT id, name FROM users WHERE id > ?", 0)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			got, err := scanUsers(t, rows)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"1 ann", "2 bob", "3 cy"}; !slices.Equal(got, want) {
				t.Errorf("rows = %q; want %q", got, want)
			}
			if want := []string{"id", "name"}; !slices.Equal(cols, want) {
				t.Errorf("Columns = %q; want %q", cols, want)
			}
			qs := d.Log(fakedb.KindQuery)
			if len(qs) != 1 {
				t.Fatalf("queries logged = %v; want 1", qs)
			}
			q := qs[0]
			// Without QueryerContext/Queryer, database/sql prepares the statement.
			wantStmt := !caps.Has(fakedb.CapQueryerContext) && !caps.Has(fakedb.CapQueryer)
			if q.SQL != "SELECT id, name FROM users WHERE id > ?" || q.ConnID != 1 || q.Stmt != wantStmt {
				t.Errorf("logged %+v; want conn 1, Stmt %v", q, wantStmt)
			}
			// database/sql converted the int argument to int64.
			if want := []driver.NamedValue{{Ordinal: 1, Value: int64(0)}}; !reflect.DeepEqual(q.Args, want) {
				t.Errorf("Args = %v; want %v", q.Args, want)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	d := fakedb.New(users)
	name := d.Register()
	if again := d.Register(); again != name || !strings.HasPrefix(name, "fakedb-") {
		t.Fatalf("Register() = %q, then %q; want one name fakedb-N", name, again)
	}
	if other := fakedb.New(nil).Register(); other == name {
		t.Fatalf("two drivers registered as %q", name)
	}
	db, err := sql.Open(name, "the-dsn")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if got := d.Log(fakedb.KindConnect)[0].DSN; got != "the-dsn" {
		t.Errorf("DSN = %q; want %q", got, "the-dsn")
	}
	if got := d.Log(fakedb.KindPing); len(got) != 1 {
		t.Errorf("pings logged = %v; want 1", got)
	}
}

func TestErrorAtThirdRow(t *testing.T) {
	errRow := errors.New("row 3 is broken")
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		res, _ := users(ctx, q)
		if res != nil {
			res.ErrAt, res.RowErr = 3, errRow
		}
		return res, nil
	})
	db := openDB(t, d)
	rows, err := db.Query("SELECT id, name FROM users")
	if err != nil {
		t.Fatal(err)
	}
	got, err := scanUsers(t, rows)
	if !errors.Is(err, errRow) {
		t.Errorf("rows.Err() = %v; want %v", err, errRow)
	}
	if want := []string{"1 ann", "2 bob"}; !slices.Equal(got, want) {
		t.Errorf("rows = %q; want %q", got, want)
	}
}

func TestPanicInNext(t *testing.T) {
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		res, _ := users(ctx, q)
		if res != nil {
			res.PanicAt, res.PanicValue = 2, "boom"
		}
		return res, nil
	})
	db := openDB(t, d)
	rows, err := db.Query("SELECT id, name FROM users")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("first Next = false (%v); want true", rows.Err())
	}
	got := func() (v any) {
		defer func() { v = recover() }()
		rows.Next()
		return nil
	}()
	if got != "boom" {
		t.Errorf("recovered %v; want boom", got)
	}
}

func TestBadConnRetriesOnNewConn(t *testing.T) {
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindQuery && q.ConnID == 1 {
			return nil, driver.ErrBadConn
		}
		return users(ctx, q)
	})
	db := openDB(t, d)
	rows, err := db.Query("SELECT id, name FROM users")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := scanUsers(t, rows); err != nil || len(got) != 3 {
		t.Fatalf("rows = %q, %v; want 3 rows", got, err)
	}
	var conns []int
	for _, q := range d.Log(fakedb.KindQuery) {
		conns = append(conns, q.ConnID)
	}
	if want := []int{1, 2}; !slices.Equal(conns, want) {
		t.Errorf("query conns = %v; want %v", conns, want)
	}
	if s := d.Stats(); s.ConnsOpened != 2 || s.ConnsClosed != 1 {
		t.Errorf("stats = %+v; want 2 opened, 1 closed", s)
	}
}

// A row that fails with driver.ErrBadConn does not make database/sql drop
// the connection (Rows.Close succeeds); only IsValid does.
func TestStickyBadConn(t *testing.T) {
	for _, tc := range []struct {
		sticky     bool
		secondConn int
	}{
		{sticky: true, secondConn: 2},
		{sticky: false, secondConn: 1},
	} {
		t.Run(fmt.Sprint("sticky=", tc.sticky), func(t *testing.T) {
			d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
				res, _ := users(ctx, q)
				if res != nil && q.SQL == "bad" {
					res.ErrAt, res.RowErr = 1, driver.ErrBadConn
				}
				return res, nil
			}, fakedb.WithStickyBadConn(tc.sticky))
			db := openDB(t, d)
			rows, err := db.Query("bad")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := scanUsers(t, rows); !errors.Is(err, driver.ErrBadConn) {
				t.Fatalf("rows.Err() = %v; want driver.ErrBadConn", err)
			}
			if err := db.QueryRow("good").Scan(new(int64), new(string)); err != nil {
				t.Fatal(err)
			}
			qs := d.Log(fakedb.KindQuery)
			if got := qs[len(qs)-1].ConnID; got != tc.secondConn {
				t.Errorf("second query ran on conn %d; want %d", got, tc.secondConn)
			}
		})
	}
}

func TestBadConnDriverLevel(t *testing.T) {
	ctx := t.Context()
	for _, sticky := range []bool{true, false} {
		t.Run(fmt.Sprint("sticky=", sticky), func(t *testing.T) {
			d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
				if q.Kind == fakedb.KindQuery {
					return nil, driver.ErrBadConn
				}
				return nil, nil
			}, fakedb.WithStickyBadConn(sticky))
			c, err := d.Connector().Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.(driver.QueryerContext).QueryContext(ctx, "SELECT 1", nil); err != driver.ErrBadConn {
				t.Fatalf("QueryContext err = %v; want driver.ErrBadConn", err)
			}
			valid := c.(driver.Validator).IsValid()
			resetErr := c.(driver.SessionResetter).ResetSession(ctx)
			_, execErr := c.(driver.ExecerContext).ExecContext(ctx, "UPDATE t SET x = 1", nil)
			if sticky {
				if valid || resetErr != driver.ErrBadConn || execErr != driver.ErrBadConn {
					t.Errorf("IsValid = %v, ResetSession = %v, Exec = %v; want false, ErrBadConn, ErrBadConn", valid, resetErr, execErr)
				}
			} else if !valid || resetErr != nil || execErr != nil {
				t.Errorf("IsValid = %v, ResetSession = %v, Exec = %v; want true, nil, nil", valid, resetErr, execErr)
			}
			// The Exec is logged either way.
			if got := len(d.Log(fakedb.KindExec)); got != 1 {
				t.Errorf("execs logged = %d; want 1", got)
			}
		})
	}
}

func TestResetSessionAndIsValidOptions(t *testing.T) {
	errReset := errors.New("reset failed")
	d := fakedb.New(nil,
		fakedb.WithResetSession(func(ctx context.Context, connID int) error { return errReset }),
		fakedb.WithIsValid(func(connID int) bool { return connID != 1 }))
	c, err := d.Connector().Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.(driver.SessionResetter).ResetSession(t.Context()); got != errReset {
		t.Errorf("ResetSession = %v; want %v", got, errReset)
	}
	if c.(driver.Validator).IsValid() {
		t.Errorf("IsValid of conn 1 = true; want false")
	}
	if got := len(d.Log(fakedb.KindResetSession, fakedb.KindIsValid)); got != 2 {
		t.Errorf("logged %d calls; want 2", got)
	}
}

func TestTransactions(t *testing.T) {
	errCommit := errors.New("commit failed")
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindCommit {
			return nil, errCommit
		}
		return &fakedb.Result{RowsAffected: 2, LastInsertID: 7}, nil
	})
	db := openDB(t, d)
	tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.Exec("UPDATE t SET x = 1")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Errorf("RowsAffected = %d; want 2", n)
	}
	if id, _ := res.LastInsertId(); id != 7 {
		t.Errorf("LastInsertId = %d; want 7", id)
	}
	if err := tx.Commit(); !errors.Is(err, errCommit) {
		t.Errorf("Commit = %v; want %v", err, errCommit)
	}
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("Rollback = %v", err)
	}
	if _, err := db.Exec("DELETE FROM t"); err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, q := range d.Log(fakedb.KindBegin, fakedb.KindExec, fakedb.KindCommit, fakedb.KindRollback) {
		got = append(got, fmt.Sprintf("%v tx=%v", q.Kind, q.InTx))
	}
	want := []string{"Begin tx=false", "Exec tx=true", "Commit tx=true", "Begin tx=false", "Rollback tx=true", "Exec tx=false"}
	if !slices.Equal(got, want) {
		t.Errorf("log = %q; want %q", got, want)
	}
	if opts := d.Log(fakedb.KindBegin)[0].TxOptions; !opts.ReadOnly {
		t.Errorf("TxOptions = %+v; want ReadOnly", opts)
	}
}

// The reader stops before its second row; the test writes meanwhile on
// another connection, then lets it go on. No sleeps: the order is forced.
func TestPauseBeforeRow(t *testing.T) {
	p := fakedb.NewPause()
	defer p.Release()
	var writes atomic.Int64
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		switch q.Kind {
		case fakedb.KindQuery:
			return &fakedb.Result{
				Columns:   []string{"n"},
				Rows:      [][]driver.Value{{int64(1)}, {int64(2)}},
				BeforeRow: p.AtRow(2),
			}, nil
		case fakedb.KindExec:
			writes.Add(1)
			return &fakedb.Result{RowsAffected: 1}, nil
		}
		return nil, nil
	})
	db := openDB(t, d)

	seen := make(chan []int64)
	go func() {
		var got []int64 // writes seen as each row arrived
		defer func() { seen <- got }()
		rows, err := db.Query("SELECT n FROM t")
		if err != nil {
			t.Error(err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			got = append(got, writes.Load())
		}
		if err := rows.Err(); err != nil {
			t.Error(err)
		}
	}()

	<-p.Reached() // the reader has row 1 and is inside Next for row 2
	if _, err := db.Exec("UPDATE t SET n = n + 1"); err != nil {
		t.Fatal(err)
	}
	p.Release()
	if got, want := <-seen, []int64{0, 1}; !slices.Equal(got, want) {
		t.Errorf("writes seen per row = %v; want %v", got, want)
	}
	var order []string
	for _, q := range d.Log(fakedb.KindQuery, fakedb.KindExec) {
		order = append(order, fmt.Sprintf("%v@%d", q.Kind, q.ConnID))
	}
	if want := []string{"Query@1", "Exec@2"}; !slices.Equal(order, want) {
		t.Errorf("log = %q; want %q", order, want)
	}
}

func TestPauseInHandlerHonoursContext(t *testing.T) {
	p := fakedb.NewPause()
	defer p.Release()
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindExec {
			return nil, p.Wait(ctx)
		}
		return nil, nil
	})
	db := openDB(t, d)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := db.ExecContext(ctx, "UPDATE t SET x = 1")
		done <- err
	}()
	<-p.Reached()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Exec = %v; want context.Canceled", err)
	}
}

func TestNamedValueCheckers(t *testing.T) {
	errReject := errors.New("rejected")
	check := func(nv *driver.NamedValue) error {
		if nv.Value == "reject" {
			return errReject
		}
		return driver.ErrSkip
	}
	for _, tc := range []struct {
		name string
		caps fakedb.Caps
		want []string // the value checks logged for stmt.Query(int32(7))
	}{
		{"AllCaps", fakedb.AllCaps, []string{"CheckNamedValue stmt=true 7", "ConvertValue stmt=true 7"}},
		{"conn checker only", fakedb.AllCaps &^ fakedb.CapStmtNamedValueChecker &^ fakedb.CapColumnConverter,
			[]string{"CheckNamedValue stmt=false 7"}},
		{"column converter only", fakedb.AllCaps &^ fakedb.CapStmtNamedValueChecker &^ fakedb.CapConnNamedValueChecker,
			[]string{"ConvertValue stmt=true 7"}},
		{"none", fakedb.AllCaps &^ fakedb.CapStmtNamedValueChecker &^ fakedb.CapConnNamedValueChecker &^ fakedb.CapColumnConverter,
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := fakedb.New(users, fakedb.WithCaps(tc.caps), fakedb.WithCheckNamedValue(check),
				fakedb.WithNumInput(func(string) int { return 1 }))
			db := openDB(t, d)
			stmt, err := db.Prepare("SELECT id, name FROM users WHERE id = ?")
			if err != nil {
				t.Fatal(err)
			}
			defer stmt.Close()
			rows, err := stmt.Query(int32(7))
			if err != nil {
				t.Fatal(err)
			}
			rows.Close()
			var got []string
			for _, q := range d.Log(fakedb.KindCheckNamedValue, fakedb.KindConvertValue) {
				got = append(got, fmt.Sprintf("%v stmt=%v %v", q.Kind, q.Stmt, q.Args[0].Value))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("checks = %q; want %q", got, tc.want)
			}
			q := d.Log(fakedb.KindQuery)[0]
			if want := []driver.NamedValue{{Ordinal: 1, Value: int64(7)}}; !q.Stmt || !reflect.DeepEqual(q.Args, want) {
				t.Errorf("query = %+v; want through stmt with %v", q, want)
			}
			rows, err = stmt.Query("reject")
			if err == nil {
				rows.Close()
			}
			if hasChecker := tc.caps&(fakedb.CapStmtNamedValueChecker|fakedb.CapConnNamedValueChecker) != 0; hasChecker != errors.Is(err, errReject) {
				t.Errorf("query with rejected value: err = %v; checker present %v", err, hasChecker)
			}
		})
	}
}

func TestColumnConverterOption(t *testing.T) {
	double := driver.ValueConverter(converterFunc(func(v any) (driver.Value, error) {
		return v.(int64) * 2, nil
	}))
	d := fakedb.New(nil, fakedb.WithNumInput(func(string) int { return 1 }),
		fakedb.WithColumnConverter(func(int) driver.ValueConverter { return double }))
	db := openDB(t, d)
	stmt, err := db.Prepare("UPDATE t SET x = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if _, err := stmt.Exec(int64(21)); err != nil {
		t.Fatal(err)
	}
	if got := d.Log(fakedb.KindExec)[0].Args[0].Value; got != int64(42) {
		t.Errorf("arg = %v; want 42", got)
	}
}

type converterFunc func(any) (driver.Value, error)

func (f converterFunc) ConvertValue(v any) (driver.Value, error) { return f(v) }

func TestErrSkipFallsBackToPrepare(t *testing.T) {
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindExec && !q.Stmt {
			return nil, driver.ErrSkip
		}
		return nil, nil
	})
	db := openDB(t, d)
	if _, err := db.Exec("UPDATE t SET x = ?", 1); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range d.Log(fakedb.KindPrepare, fakedb.KindExec) {
		got = append(got, fmt.Sprintf("%v stmt=%v", q.Kind, q.Stmt))
	}
	if want := []string{"Exec stmt=false", "Prepare stmt=false", "Exec stmt=true"}; !slices.Equal(got, want) {
		t.Errorf("log = %q; want %q", got, want)
	}
}

func TestConnectAndPrepareErrors(t *testing.T) {
	errDown := errors.New("server down")
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		if q.Kind == fakedb.KindConnect && q.ConnID == 1 || q.Kind == fakedb.KindPrepare {
			return nil, errDown
		}
		return nil, nil
	})
	db := openDB(t, d)
	if err := db.Ping(); !errors.Is(err, errDown) {
		t.Errorf("first Ping = %v; want %v", err, errDown)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("second Ping = %v; want nil", err)
	}
	if _, err := db.Prepare("SELECT 1"); !errors.Is(err, errDown) {
		t.Errorf("Prepare = %v; want %v", err, errDown)
	}
}

func TestUnsupportedConnCaps(t *testing.T) {
	caps := fakedb.AllCaps &^ (fakedb.CapExecer | fakedb.CapQueryer | fakedb.CapPinger)
	if caps.Check() == nil {
		t.Fatalf("Check(%v) = nil; want an error", caps)
	}
	d := fakedb.New(nil, fakedb.WithCaps(caps))
	if _, err := sql.Open(d.Register(), ""); err == nil || !strings.Contains(err.Error(), "fakedb: caps") {
		t.Errorf("sql.Open = %v; want the caps error", err)
	}
	db := sql.OpenDB(d.Connector())
	defer db.Close()
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "fakedb: caps") {
		t.Errorf("Ping = %v; want the caps error", err)
	}
}

func TestNextResultSetAndColumnTypes(t *testing.T) {
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		return &fakedb.Result{
			Columns: []string{"price", "name"},
			Rows:    [][]driver.Value{{"9.50", nil}, {"1.25", "pen"}},
			Types: []fakedb.ColumnType{
				{DatabaseTypeName: "DECIMAL", Precision: 10, Scale: 2, HasPrecisionScale: true,
					Nullable: false, HasNullable: true},
				{DatabaseTypeName: "VARCHAR", Length: 40, HasLength: true},
			},
			NextSet: &fakedb.Result{Columns: []string{"n"}, Rows: [][]driver.Value{{int64(5)}}},
		}, nil
	})
	db := openDB(t, d)
	rows, err := db.Query("CALL two_sets()")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ct := range cts {
		p, s, psOK := ct.DecimalSize()
		l, lOK := ct.Length()
		n, nOK := ct.Nullable()
		got = append(got, strings.TrimSpace(fmt.Sprintln(ct.Name(), ct.DatabaseTypeName(), p, s, psOK, l, lOK, n, nOK, ct.ScanType())))
	}
	want := []string{
		"price DECIMAL 10 2 true 0 false false true string",
		"name VARCHAR 0 0 false 40 true false false string",
	}
	if !slices.Equal(got, want) {
		t.Errorf("column types = %q; want %q", got, want)
	}
	for rows.Next() {
	}
	if !rows.NextResultSet() {
		t.Fatalf("NextResultSet = false (%v); want true", rows.Err())
	}
	var n int64
	if !rows.Next() {
		t.Fatalf("Next in second set = false (%v)", rows.Err())
	}
	if err := rows.Scan(&n); err != nil || n != 5 {
		t.Errorf("second set = %d, %v; want 5", n, err)
	}
}

func TestReuseBuffers(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
			return &fakedb.Result{
				Columns:      []string{"b"},
				Rows:         [][]driver.Value{{[]byte("first")}, {[]byte("other")}},
				ReuseBuffers: reuse,
			}, nil
		})
		c, err := d.Connector().Connect(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rows, err := c.(driver.QueryerContext).QueryContext(t.Context(), "SELECT b", nil)
		if err != nil {
			t.Fatal(err)
		}
		dest := make([]driver.Value, 1)
		if err := rows.Next(dest); err != nil {
			t.Fatal(err)
		}
		kept := dest[0].([]byte)
		if err := rows.Next(dest); err != nil {
			t.Fatal(err)
		}
		if changed := !bytes.Equal(kept, []byte("first")); changed != reuse {
			t.Errorf("ReuseBuffers %v: kept value = %q after the next row", reuse, kept)
		}
		rows.Close()
		c.Close()
		if err := d.CheckLeaks(); err != nil {
			t.Error(err)
		}
	}
}

func TestConnectorCloser(t *testing.T) {
	for _, caps := range []fakedb.Caps{fakedb.AllCaps, fakedb.AllCaps &^ fakedb.CapConnectorCloser} {
		d := fakedb.New(nil, fakedb.WithCaps(caps))
		db := sql.OpenDB(d.Connector())
		db.Close()
		want := 0
		if caps.Has(fakedb.CapConnectorCloser) {
			want = 1
		}
		if got := d.Stats().ConnectorsClosed; got != want {
			t.Errorf("%v: ConnectorsClosed = %d; want %d", caps, got, want)
		}
	}
}

// Every supported variant works end to end through database/sql, whichever
// optional interfaces it lacks.
func TestVariantsThroughSQL(t *testing.T) {
	for _, caps := range fakedb.Variants() {
		d := fakedb.New(users, fakedb.WithCaps(caps))
		db := sql.OpenDB(d.Connector())
		ctx := t.Context()
		rows, err := db.QueryContext(ctx, "SELECT id, name FROM users WHERE id > ?", 0)
		if err != nil {
			t.Fatalf("%v: Query: %v", caps, err)
		}
		if got, err := scanUsers(t, rows); err != nil || len(got) != 3 {
			t.Errorf("%v: rows = %q, %v", caps, got, err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("%v: Begin: %v", caps, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE t SET x = ?", 1); err != nil {
			t.Errorf("%v: Exec: %v", caps, err)
		}
		if err := tx.Commit(); err != nil {
			t.Errorf("%v: Commit: %v", caps, err)
		}
		if err := db.PingContext(ctx); err != nil {
			t.Errorf("%v: Ping: %v", caps, err)
		}
		db.Close()
		if err := d.CheckLeaks(); err != nil {
			t.Errorf("%v: %v", caps, err)
		}
		if n := d.Stats().OpenConns; n != 0 {
			t.Errorf("%v: OpenConns = %d after Close", caps, n)
		}
	}
}
