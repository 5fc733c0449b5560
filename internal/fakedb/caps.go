package fakedb

//lint:file-ignore SA1019 the fake driver implements the interfaces deprecated since Go 1.8/1.9 on purpose: idmap must work over drivers that have only those

//go:generate go run ./gen -o pick_gen.go

import (
	"database/sql/driver"
	"fmt"
	"io"
	"math/bits"
	"reflect"
	"slices"
	"strings"
)

// Caps is a set of flags, one per optional interface of database/sql/driver
// (and io.Closer on the connector). A value the Driver produces implements an
// optional interface exactly when its flag is set. Pass it with [WithCaps].
type Caps uint32

// The flags, grouped by the value that carries the interface.
const (
	// CapDriverContext: the driver.Driver implements driver.DriverContext.
	CapDriverContext Caps = 1 << iota

	// CapConnectorCloser: the driver.Connector implements io.Closer.
	CapConnectorCloser

	CapConnBeginTx           // driver.Conn implements driver.ConnBeginTx
	CapConnPrepareContext    // driver.Conn implements driver.ConnPrepareContext
	CapExecerContext         // driver.Conn implements driver.ExecerContext
	CapExecer                // driver.Conn implements driver.Execer
	CapQueryerContext        // driver.Conn implements driver.QueryerContext
	CapQueryer               // driver.Conn implements driver.Queryer
	CapPinger                // driver.Conn implements driver.Pinger
	CapSessionResetter       // driver.Conn implements driver.SessionResetter
	CapValidator             // driver.Conn implements driver.Validator
	CapConnNamedValueChecker // driver.Conn implements driver.NamedValueChecker

	CapStmtExecContext       // driver.Stmt implements driver.StmtExecContext
	CapStmtQueryContext      // driver.Stmt implements driver.StmtQueryContext
	CapStmtNamedValueChecker // driver.Stmt implements driver.NamedValueChecker
	CapColumnConverter       // driver.Stmt implements driver.ColumnConverter

	CapRowsNextResultSet              // driver.Rows implements driver.RowsNextResultSet
	CapRowsColumnTypeDatabaseTypeName // driver.Rows implements driver.RowsColumnTypeDatabaseTypeName
	CapRowsColumnTypeLength           // driver.Rows implements driver.RowsColumnTypeLength
	CapRowsColumnTypeNullable         // driver.Rows implements driver.RowsColumnTypeNullable
	CapRowsColumnTypePrecisionScale   // driver.Rows implements driver.RowsColumnTypePrecisionScale
	CapRowsColumnTypeScanType         // driver.Rows implements driver.RowsColumnTypeScanType

	numCaps = iota
)

// Masks of the flags of each kind of value, and the two ends of the range.
const (
	DriverCaps    = CapDriverContext
	ConnectorCaps = CapConnectorCloser
	ConnCaps      = CapConnBeginTx | CapConnPrepareContext | CapExecerContext | CapExecer |
		CapQueryerContext | CapQueryer | CapPinger | CapSessionResetter | CapValidator |
		CapConnNamedValueChecker
	StmtCaps = CapStmtExecContext | CapStmtQueryContext | CapStmtNamedValueChecker | CapColumnConverter
	RowsCaps = CapRowsNextResultSet | CapRowsColumnTypeDatabaseTypeName | CapRowsColumnTypeLength |
		CapRowsColumnTypeNullable | CapRowsColumnTypePrecisionScale | CapRowsColumnTypeScanType

	// AllCaps sets every flag: each value implements every optional
	// interface, like a complete modern driver. It is the default.
	AllCaps = DriverCaps | ConnectorCaps | ConnCaps | StmtCaps | RowsCaps

	// Minimal sets no flag: the values implement only driver.Driver,
	// driver.Connector, driver.Conn (Prepare, Close, Begin), driver.Stmt,
	// driver.Tx and driver.Rows.
	Minimal Caps = 0
)

// maxConnDistance is how far (in flags) a supported set of conn flags may be
// from Minimal or from AllCaps; see [Caps.Check]. The generator uses the
// same rule.
const maxConnDistance = 2

var capInfo = [numCaps]struct {
	name  string
	iface reflect.Type
}{
	{"DriverContext", reflect.TypeFor[driver.DriverContext]()},
	{"ConnectorCloser", reflect.TypeFor[io.Closer]()},
	{"ConnBeginTx", reflect.TypeFor[driver.ConnBeginTx]()},
	{"ConnPrepareContext", reflect.TypeFor[driver.ConnPrepareContext]()},
	{"ExecerContext", reflect.TypeFor[driver.ExecerContext]()},
	{"Execer", reflect.TypeFor[driver.Execer]()},
	{"QueryerContext", reflect.TypeFor[driver.QueryerContext]()},
	{"Queryer", reflect.TypeFor[driver.Queryer]()},
	{"Pinger", reflect.TypeFor[driver.Pinger]()},
	{"SessionResetter", reflect.TypeFor[driver.SessionResetter]()},
	{"Validator", reflect.TypeFor[driver.Validator]()},
	{"ConnNamedValueChecker", reflect.TypeFor[driver.NamedValueChecker]()},
	{"StmtExecContext", reflect.TypeFor[driver.StmtExecContext]()},
	{"StmtQueryContext", reflect.TypeFor[driver.StmtQueryContext]()},
	{"StmtNamedValueChecker", reflect.TypeFor[driver.NamedValueChecker]()},
	{"ColumnConverter", reflect.TypeFor[driver.ColumnConverter]()},
	{"RowsNextResultSet", reflect.TypeFor[driver.RowsNextResultSet]()},
	{"RowsColumnTypeDatabaseTypeName", reflect.TypeFor[driver.RowsColumnTypeDatabaseTypeName]()},
	{"RowsColumnTypeLength", reflect.TypeFor[driver.RowsColumnTypeLength]()},
	{"RowsColumnTypeNullable", reflect.TypeFor[driver.RowsColumnTypeNullable]()},
	{"RowsColumnTypePrecisionScale", reflect.TypeFor[driver.RowsColumnTypePrecisionScale]()},
	{"RowsColumnTypeScanType", reflect.TypeFor[driver.RowsColumnTypeScanType]()},
}

// Has reports whether every flag of f is set in c.
func (c Caps) Has(f Caps) bool { return c&f == f }

// Flags returns the single flags set in c, lowest first.
func (c Caps) Flags() []Caps {
	var fs []Caps
	for i := range 32 {
		if f := Caps(1) << i; c&f != 0 {
			fs = append(fs, f)
		}
	}
	return fs
}

// Interface returns the interface type that the single flag c stands for
// (for example reflect.TypeFor[driver.Pinger]() for CapPinger), or nil if c
// is not exactly one known flag. CapConnNamedValueChecker and
// CapStmtNamedValueChecker both stand for driver.NamedValueChecker, on
// different values.
func (c Caps) Interface() reflect.Type {
	if bits.OnesCount32(uint32(c)) != 1 || c&AllCaps == 0 {
		return nil
	}
	return capInfo[bits.TrailingZeros32(uint32(c))].iface
}

// String returns the flag names joined by "|", "AllCaps" and "Minimal" for
// the two ends, and "AllCaps&^Execer" or "AllCaps&^(Execer|Queryer)" when
// more than half of the flags are set.
func (c Caps) String() string {
	switch c {
	case AllCaps:
		return "AllCaps"
	case Minimal:
		return "Minimal"
	}
	if c&^AllCaps == 0 && bits.OnesCount32(uint32(c)) > numCaps/2 {
		missing := AllCaps &^ c
		if bits.OnesCount32(uint32(missing)) == 1 {
			return "AllCaps&^" + missing.String()
		}
		return "AllCaps&^(" + missing.String() + ")"
	}
	var names []string
	for _, f := range c.Flags() {
		if f&AllCaps == 0 {
			names = append(names, fmt.Sprintf("%#x", uint32(f)))
			continue
		}
		names = append(names, capInfo[bits.TrailingZeros32(uint32(f))].name)
	}
	return strings.Join(names, "|")
}

// Check reports whether the Driver can produce values with caps c. Every
// combination of the driver, connector, stmt and rows flags is supported.
// Of the 1024 combinations of the ten conn flags, those within two flags of
// Minimal or of AllCaps are supported (112 in all: none, one or two conn
// interfaces; all, all but one or all but two); the Driver's Open and
// OpenConnector return Check's error for any other.
func (c Caps) Check() error {
	if unknown := c &^ AllCaps; unknown != 0 {
		return fmt.Errorf("fakedb: caps %#x: unknown flags %#x", uint32(c), uint32(unknown))
	}
	n := bits.OnesCount32(uint32(c & ConnCaps))
	if n > maxConnDistance && n < bits.OnesCount32(uint32(ConnCaps))-maxConnDistance {
		return fmt.Errorf("fakedb: caps %v: %d conn flags set; supported are at most %d set or at most %d left out of %d",
			c&ConnCaps, n, maxConnDistance, maxConnDistance, bits.OnesCount32(uint32(ConnCaps)))
	}
	return nil
}

// Variants returns a list of caps that, together, cover every supported
// combination of each kind of value once: every combination of one kind's
// flags (every supported one for conns) with all the flags of the other
// kinds set. AllCaps comes first, Minimal second; the list has no
// duplicates. A test of a wrapper runs over Variants to check that the
// wrapper exposes exactly the optional interfaces of the values it wraps.
func Variants() []Caps {
	vs := []Caps{AllCaps, Minimal}
	for _, mask := range []Caps{DriverCaps, ConnectorCaps, ConnCaps, StmtCaps, RowsCaps} {
		for _, sub := range subsets(mask) {
			c := AllCaps&^mask | sub
			if c.Check() == nil && !slices.Contains(vs, c) {
				vs = append(vs, c)
			}
		}
	}
	return vs
}

// subsets returns every subset of mask, in increasing order.
func subsets(mask Caps) []Caps {
	var out []Caps
	// Enumerate submasks from mask down to 0, then reverse.
	for s := mask; ; s = (s - 1) & mask {
		out = append(out, s)
		if s == 0 {
			break
		}
	}
	slices.Reverse(out)
	return out
}
