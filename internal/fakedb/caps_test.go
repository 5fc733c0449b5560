package fakedb_test

//lint:file-ignore SA1019 the fake driver implements the interfaces deprecated since Go 1.8/1.9 on purpose: idmap must work over drivers that have only those

import (
	"database/sql/driver"
	"io"
	"math/bits"
	"reflect"
	"slices"
	"testing"

	"github.com/go-idmap/idmap/internal/fakedb"
)

// values returns one value of each kind made by a Driver with caps.
func values(t *testing.T, caps fakedb.Caps) map[fakedb.Caps]any {
	t.Helper()
	d := fakedb.New(nil, fakedb.WithCaps(caps))
	connector := d.Connector()
	c, err := connector.Connect(t.Context())
	if err != nil {
		t.Fatalf("%v: Connect: %v", caps, err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.Prepare("SELECT 1")
	if err != nil {
		t.Fatalf("%v: Prepare: %v", caps, err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := s.Query(nil)
	if err != nil {
		t.Fatalf("%v: Query: %v", caps, err)
	}
	t.Cleanup(func() { r.Close() })
	return map[fakedb.Caps]any{
		fakedb.DriverCaps:    d.Driver(),
		fakedb.ConnectorCaps: connector,
		fakedb.ConnCaps:      c,
		fakedb.StmtCaps:      s,
		fakedb.RowsCaps:      r,
	}
}

// The interfaces each kind of value has whatever its caps.
var kindNames = map[fakedb.Caps]string{
	fakedb.DriverCaps: "driver", fakedb.ConnectorCaps: "connector", fakedb.ConnCaps: "conn",
	fakedb.StmtCaps: "stmt", fakedb.RowsCaps: "rows",
}

var baseInterfaces = map[fakedb.Caps]reflect.Type{
	fakedb.DriverCaps:    reflect.TypeFor[driver.Driver](),
	fakedb.ConnectorCaps: reflect.TypeFor[driver.Connector](),
	fakedb.ConnCaps:      reflect.TypeFor[driver.Conn](),
	fakedb.StmtCaps:      reflect.TypeFor[driver.Stmt](),
	fakedb.RowsCaps:      reflect.TypeFor[driver.Rows](),
}

// For every variant and every kind of value, each flag's interface is
// implemented exactly when the flag is set, and no other kind's optional
// interface leaks in.
func TestCapsMatchInterfaces(t *testing.T) {
	flags := fakedb.AllCaps.Flags()
	for _, caps := range fakedb.Variants() {
		for mask, v := range values(t, caps) {
			typ := reflect.TypeOf(v)
			if !typ.Implements(baseInterfaces[mask]) {
				t.Errorf("caps %v, %s value: %v does not implement %v", caps, kindNames[mask], typ, baseInterfaces[mask])
			}
			for _, f := range flags {
				iface := f.Interface()
				var want bool
				switch {
				case f&mask != 0:
					want = caps.Has(f)
				case baseInterfaces[mask].Implements(iface):
					continue // io.Closer on a conn, stmt or rows
				case slices.ContainsFunc((caps & mask).Flags(), func(g fakedb.Caps) bool { return g.Interface() == iface }):
					continue // the same interface under this kind's own flag
				}
				if got := typ.Implements(iface); got != want {
					t.Errorf("caps %v, %s value: implements %v (flag %v) = %v; want %v", caps, kindNames[mask], iface, f, got, want)
				}
			}
		}
	}
}

func TestFlagsAndInterfaces(t *testing.T) {
	flags := fakedb.AllCaps.Flags()
	if len(flags) != 22 {
		t.Fatalf("%d flags; want 22", len(flags))
	}
	seen := map[reflect.Type]fakedb.Caps{}
	for _, f := range flags {
		iface := f.Interface()
		if iface == nil || iface.Kind() != reflect.Interface {
			t.Errorf("%v.Interface() = %v; want an interface type", f, iface)
			continue
		}
		if prev, ok := seen[iface]; ok && !(prev == fakedb.CapConnNamedValueChecker && f == fakedb.CapStmtNamedValueChecker) {
			t.Errorf("%v and %v both stand for %v", prev, f, iface)
		}
		seen[iface] = f
		if f.String() == "" || f.String() != f.Flags()[0].String() {
			t.Errorf("String of %#x = %q", uint32(f), f.String())
		}
	}
	if got := (fakedb.CapPinger | fakedb.CapValidator).Interface(); got != nil {
		t.Errorf("Interface of two flags = %v; want nil", got)
	}
	for c, want := range map[fakedb.Caps]string{
		fakedb.CapPinger | fakedb.CapValidator:                   "Pinger|Validator",
		fakedb.AllCaps &^ fakedb.CapExecer:                       "AllCaps&^Execer",
		fakedb.AllCaps &^ (fakedb.CapExecer | fakedb.CapQueryer): "AllCaps&^(Execer|Queryer)",
		fakedb.AllCaps &^ fakedb.RowsCaps &^ fakedb.StmtCaps:     "AllCaps&^(StmtExecContext|StmtQueryContext|StmtNamedValueChecker|ColumnConverter|RowsNextResultSet|RowsColumnTypeDatabaseTypeName|RowsColumnTypeLength|RowsColumnTypeNullable|RowsColumnTypePrecisionScale|RowsColumnTypeScanType)",
	} {
		if got := c.String(); got != want {
			t.Errorf("String of %#x = %q; want %q", uint32(c), got, want)
		}
	}
	if got, want := (fakedb.CapPinger | 1<<30).String(), "Pinger|0x40000000"; got != want {
		t.Errorf("String = %q; want %q", got, want)
	}
	if got := fakedb.CapConnectorCloser.Interface(); got != reflect.TypeFor[io.Closer]() {
		t.Errorf("CapConnectorCloser.Interface() = %v; want io.Closer", got)
	}
}

func TestConnCombinations(t *testing.T) {
	supported := 0
	for set := range 1 << 10 {
		var caps fakedb.Caps
		for i, f := range fakedb.ConnCaps.Flags() {
			if set&(1<<i) != 0 {
				caps |= f
			}
		}
		n := bits.OnesCount(uint(set))
		wantOK := n <= 2 || n >= 8
		err := caps.Check()
		if (err == nil) != wantOK {
			t.Errorf("Check(%v) = %v; want ok %v", caps, err, wantOK)
		}
		_, openErr := fakedb.New(nil, fakedb.WithCaps(caps)).Connector().Connect(t.Context())
		if (openErr == nil) != wantOK {
			t.Errorf("Connect with %v: %v; want ok %v", caps, openErr, wantOK)
		}
		if wantOK {
			supported++
		}
	}
	if supported != 112 {
		t.Errorf("%d supported conn combinations; want 112", supported)
	}
	if err := (fakedb.AllCaps | 1<<30).Check(); err == nil {
		t.Errorf("Check with an unknown flag = nil; want an error")
	}
}

func TestVariants(t *testing.T) {
	vs := fakedb.Variants()
	// AllCaps, Minimal, then per kind every subset but the full one:
	// 1 (driver) + 1 (connector) + 111 (conn) + 15 (stmt) + 63 (rows).
	if len(vs) != 2+1+1+111+15+63 {
		t.Errorf("len(Variants()) = %d; want 193", len(vs))
	}
	if vs[0] != fakedb.AllCaps || vs[1] != fakedb.Minimal {
		t.Errorf("Variants starts %v, %v; want AllCaps, Minimal", vs[0], vs[1])
	}
	seen := map[fakedb.Caps]bool{}
	for _, v := range vs {
		if seen[v] {
			t.Errorf("%v listed twice", v)
		}
		seen[v] = true
		if err := v.Check(); err != nil {
			t.Error(err)
		}
	}
}
