package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/internal/fakedb"
)

// pickyScanner takes only strings, and says so otherwise.
type pickyScanner struct{ s string }

func (p *pickyScanner) Scan(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("pickyScanner: %T is not a string", v)
	}
	p.s = s
	return nil
}

// fakeDecimal is a decimal value as a driver may return it, and composer a
// destination that takes one by Compose (database/sql's decimal
// interfaces) and anything else by Scan.
type (
	fakeDecimal struct{}
	composer    struct{ by string }
)

func (fakeDecimal) Decompose([]byte) (byte, bool, []byte, int32) { return 0, false, []byte{1}, 0 }
func (c *composer) Compose(byte, bool, []byte, int32) error      { c.by = "Compose"; return nil }
func (c *composer) Scan(any) error                               { c.by = "Scan"; return nil }

type (
	convInt   int32
	convStr   string
	convBool  bool
	convFloat float64
	convUint  uint16
	convBlob  []byte
)

// convTypes are the field types the conversion tests store into.
var convTypes = []reflect.Type{
	reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](), reflect.TypeFor[int32](), reflect.TypeFor[int64](),
	reflect.TypeFor[uint](), reflect.TypeFor[uint8](), reflect.TypeFor[uint16](), reflect.TypeFor[uint32](), reflect.TypeFor[uint64](),
	reflect.TypeFor[float32](), reflect.TypeFor[float64](), reflect.TypeFor[string](), reflect.TypeFor[[]byte](),
	reflect.TypeFor[time.Time](), reflect.TypeFor[bool](), reflect.TypeFor[any](),
	reflect.TypeFor[convInt](), reflect.TypeFor[convStr](), reflect.TypeFor[convBool](), reflect.TypeFor[convFloat](),
	reflect.TypeFor[convUint](), reflect.TypeFor[convBlob](), reflect.TypeFor[sql.NullString](),
	reflect.TypeFor[sql.NullInt64](), reflect.TypeFor[*int](), reflect.TypeFor[*int8](), reflect.TypeFor[*string](),
	reflect.TypeFor[*[]byte](), reflect.TypeFor[*time.Time](), reflect.TypeFor[*any](), reflect.TypeFor[*convStr](),
	reflect.TypeFor[*float32](), reflect.TypeFor[*bool](), reflect.TypeFor[**int](), reflect.TypeFor[*sql.NullString](),
	reflect.TypeFor[time.Duration](), reflect.TypeFor[pickyScanner](), reflect.TypeFor[*pickyScanner](),
	reflect.TypeFor[sql.NullFloat64](), reflect.TypeFor[sql.NullBool](), reflect.TypeFor[sql.NullTime](),
	reflect.TypeFor[composer](),
}

// TestConvertMatchesScan: for every pair of a driver value and a field
// type, what Bind stores without Rows.Scan is what Rows.Scan stores into
// the field, and Bind leaves to Rows.Scan every pair where Scan fails. The
// []byte values sit in buffers the driver overwrites at the next row, so a
// stored value that shares them shows it.
func TestConvertMatchesScan(t *testing.T) {
	now := time.Date(2026, 11, 27, 14, 3, 4, 5, time.UTC)
	var srcs []driver.Value
	for _, n := range []int64{0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, -32769, 65535, 65536,
		math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1, math.MaxUint32, math.MaxUint32 + 1,
		math.MaxInt64, math.MinInt64} {
		srcs = append(srcs, n)
	}
	for _, s := range []string{"", "0", "42", "-42", "+7", " 1", "0x10", "1_000", "abc", "1.5", "-2.25", "1e3", "1e400", "NaN", "inf",
		"true", "false", "t", "1", "300", "-300", "65536", "2147483648", "18446744073709551615", "18446744073709551616",
		"9223372036854775807", "9223372036854775808", "héllo", "2026-11-27 14:03:04"} {
		srcs = append(srcs, s, []byte(s))
	}
	for _, u := range []uint64{0, 1, 255, 256, math.MaxUint32, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		srcs = append(srcs, u)
	}
	for _, f := range []float32{1.5, 0.1, -2.25, 3, 1e38, 16777217, float32(math.Copysign(0, -1))} {
		srcs = append(srcs, f)
	}
	srcs = append(srcs, fakeDecimal{}, nil, []byte(nil), []byte{}, true, false, now, time.Time{},
		0.0, 1.5, -2.25, 3.0, 0.1, 1e300, -1e-300, float64(math.MaxInt64), math.Inf(1), 1<<24+1.0)

	types := convTypes

	cols := make([]string, len(srcs))
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d", i)
	}
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		return &fakedb.Result{Columns: cols, Rows: [][]driver.Value{srcs, srcs}, ReuseBuffers: true}, nil
	})
	db, err := sql.Open(d.Register(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("no row")
	}
	vals := make([]any, len(srcs))
	sinks := make([]any, len(srcs))
	for i := range vals {
		sinks[i] = &vals[i]
	}
	if err := rows.Scan(sinks...); err != nil {
		t.Fatal(err)
	}
	type result struct {
		what      string
		want, got reflect.Value
	}
	var results []result
	direct, scanned := 0, 0
	for _, ft := range types {
		for i, src := range srcs {
			what := fmt.Sprintf("%T(%v) into %v", src, src, ft)
			want := reflect.New(ft)
			dest := make([]any, len(srcs))
			var sink any
			for j := range dest {
				dest[j] = &sink
			}
			dest[i] = want.Interface()
			scanErr := rows.Scan(dest...)
			got := reflect.New(ft)
			if !idmap.AssignLikeScan(ft, got.UnsafePointer(), vals[i]) {
				scanned++
				continue
			}
			direct++
			if scanErr != nil {
				t.Errorf("%s: Bind stores %v; Scan fails: %v", what, got.Elem(), scanErr)
				continue
			}
			results = append(results, result{what, want, got})
		}
	}
	// The next row overwrites the first row's []byte buffers.
	if !rows.Next() {
		t.Fatal("no second row")
	}
	for _, r := range results {
		if !sameValue(r.got.Elem(), r.want.Elem()) {
			t.Errorf("%s: Bind stores %#v; Scan stores %#v", r.what, r.got.Elem().Interface(), r.want.Elem().Interface())
		}
	}
	if direct == 0 || scanned == 0 {
		t.Fatalf("direct %d, scanned %d: the test covers nothing", direct, scanned)
	}
	t.Logf("%d pairs stored by Bind, %d left to Scan", direct, scanned)
	// sql.RawBytes holds the rows' lock until Next: it is left out above.
	if idmap.AssignLikeScan(reflect.TypeFor[sql.RawBytes](), unsafe.Pointer(new(sql.RawBytes)), []byte("x")) {
		t.Error("Bind stores into sql.RawBytes itself")
	}
}

// sameValue is reflect.DeepEqual, but NaN equals NaN (and unexported
// fields are compared too).
func sameValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}

type convRow struct {
	ID    int64   `db:"id"`
	Name  string  `db:"name"`
	Score float32 `db:"score"`
	Note  *string `db:"note"`
}

func (convRow) TableName() string { return "conv_rows" }

// TestBindConvertFallback: rows whose values Bind stores itself and rows
// that need Rows.Scan (an integer into a string, a float64 into a float32)
// mix in one result, with the []byte values in reused buffers; Bind gives
// what a hand-written Scan gives, and Scan's error for a NULL it cannot
// store.
func TestBindConvertFallback(t *testing.T) {
	rowsOf := [][]driver.Value{
		{int64(1), "ann", []byte("1.5"), nil},
		{int64(2), int64(42), 2.25, []byte("x")},
		{[]byte("3"), []byte("cy"), "0.5", "y"},
		{int64(4), "dee", float64(0.1), nil},
	}
	cols := []string{"id", "name", "score", "note"}
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		r := rowsOf
		if strings.Contains(q.SQL, "null") {
			r = [][]driver.Value{{int64(5), nil, 1.0, nil}}
		}
		return &fakedb.Result{Columns: cols, Rows: r, ReuseBuffers: true}, nil
	})
	plain := sql.OpenDB(d.Connector())
	defer plain.Close()
	db := sql.OpenDB(idmap.NewConnector(d.Connector()))
	defer db.Close()
	ctx := idmap.NewContext(context.Background())

	rows, err := plain.Query("SELECT")
	if err != nil {
		t.Fatal(err)
	}
	var want []convRow
	for rows.Next() {
		var r convRow
		if err := rows.Scan(&r.ID, &r.Name, &r.Score, &r.Note); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	rows.Close()

	rs, err := db.QueryContext(ctx, "SELECT")
	if err != nil {
		t.Fatal(err)
	}
	var got []*convRow
	if err := idmap.Bind(rs, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows; want %d", len(got), len(want))
	}
	for i := range want {
		if !sameValue(reflect.ValueOf(*got[i]), reflect.ValueOf(want[i])) {
			g, w := *got[i], want[i]
			t.Errorf("row %d: Bind %+v (note %v); Scan %+v (note %v)", i, g, deref(g.Note), w, deref(w.Note))
		}
	}

	var scanErr error
	if err := plain.QueryRow("SELECT null").Scan(new(int64), new(string), new(float32), new(*string)); err != nil {
		scanErr = err
	}
	rs, err = db.QueryContext(ctx, "SELECT null")
	if err != nil {
		t.Fatal(err)
	}
	var bad []*convRow
	err = idmap.Bind(rs, &bad)
	if err == nil || scanErr == nil || !strings.Contains(err.Error(), scanErr.Error()) {
		t.Errorf("NULL into a string: Bind says %v; Scan says %v", err, scanErr)
	}
}

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// FuzzConvertMatchesScan: for a driver value made from the fuzzer's input
// and one of convTypes, what Bind stores without Rows.Scan is what Rows.Scan
// stores, and Bind leaves to Rows.Scan every value that Scan refuses.
func FuzzConvertMatchesScan(f *testing.F) {
	f.Add(uint8(0), int64(300), 1.5, "42", uint8(3))
	f.Add(uint8(1), int64(-1), 1e300, "1e3", uint8(10))
	f.Add(uint8(2), int64(0), 0.1, " 7", uint8(0))
	f.Add(uint8(3), int64(1), -2.25, "true", uint8(15))
	f.Add(uint8(5), int64(-5), 3.0, "", uint8(9))
	f.Add(uint8(6), int64(7), 16777217.0, "NaN", uint8(10))
	var cur driver.Value
	db := sql.OpenDB(oneValueConnector{&cur})
	defer db.Close()
	f.Fuzz(func(t *testing.T, kind uint8, n int64, x float64, s string, ti uint8) {
		switch kind % 8 {
		case 0:
			cur = n
		case 1:
			cur = x
		case 2:
			cur = s
		case 3:
			cur = []byte(s)
		case 4:
			cur = n%2 == 0
		case 5:
			cur = uint64(n)
		case 6:
			cur = float32(x)
		default:
			cur = nil
		}
		ft := convTypes[int(ti)%len(convTypes)]
		rows, err := db.Query("SELECT")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatal("no row")
		}
		var v any
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		want := reflect.New(ft)
		scanErr := rows.Scan(want.Interface())
		got := reflect.New(ft)
		if !idmap.AssignLikeScan(ft, got.UnsafePointer(), v) {
			return
		}
		if scanErr != nil {
			t.Fatalf("%T(%v) into %v: Bind stores %v; Scan fails: %v", cur, cur, ft, got.Elem(), scanErr)
		}
		if !sameValue(got.Elem(), want.Elem()) {
			t.Fatalf("%T(%v) into %v: Bind stores %#v; Scan stores %#v", cur, cur, ft, got.Elem().Interface(), want.Elem().Interface())
		}
	})
}

// oneValueConnector is a driver whose every query gives one row of one
// column: the value *v holds when the query is sent.
type oneValueConnector struct{ v *driver.Value }

func (c oneValueConnector) Connect(context.Context) (driver.Conn, error) { return oneValueConn(c), nil }
func (c oneValueConnector) Driver() driver.Driver                        { return nil }

type oneValueConn oneValueConnector

func (oneValueConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (oneValueConn) Close() error                        { return nil }
func (oneValueConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }
func (c oneValueConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return &oneValueRows{v: *c.v}, nil
}

type oneValueRows struct {
	v    driver.Value
	done bool
}

func (*oneValueRows) Columns() []string { return []string{"v"} }
func (*oneValueRows) Close() error      { return nil }
func (r *oneValueRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.v
	return nil
}
