package idmap

// The SQLite drivers' hooks, reached past their wrappers and their types.
// hookBase reads the base connection out of sqlmw's unexported field. The
// preupdate hook's fast path reads the driver's data through a mirror
// struct (mattnPreData, moderncPreData) and calls its Old and New methods
// as functions of an unsafe.Pointer receiver (methodFunc). The invariant:
// a mirror stands for a driver's type only when sameLayout finds the same
// fields at the same offsets with the same representations, and a method
// is called through methodFunc only when sameShape finds a pointer
// receiver and the same parameters and results (a method expression of a
// pointer receiver and a func of an unsafe.Pointer have one calling
// convention); anything else takes the reflection path (slower, same
// result). unsafe_sqlite_test.go checks the mirrors against both drivers'
// types and methodFunc against a direct call.

import (
	"database/sql/driver"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// hookBase returns the base driver's connection behind bc that has a hook
// to register: through Unwrap methods, and through sqlmw's wrapper (a
// common instrumentation layer that has none).
func hookBase(bc driver.Conn) any {
	for range 8 {
		if bc == nil {
			return nil
		}
		if _, ok := bc.(updateHooker); ok {
			return bc
		}
		if m := reflect.ValueOf(bc).MethodByName("RegisterPreUpdateHook"); m.IsValid() {
			return bc
		}
		if u, ok := bc.(interface{ Unwrap() driver.Conn }); ok {
			bc = u.Unwrap()
			continue
		}
		rv := reflect.ValueOf(bc)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() {
			rv = rv.Elem()
		}
		if rv.Kind() != reflect.Struct || rv.Type().PkgPath() != "github.com/ngrok/sqlmw" {
			return nil
		}
		cp := reflect.New(rv.Type()).Elem() // addressable, to read the unexported field
		cp.Set(rv)
		f := cp.FieldByName("parent")
		if !f.IsValid() || f.Type() != reflect.TypeFor[driver.Conn]() {
			return nil
		}
		bc, _ = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(driver.Conn)
	}
	return nil
}

// The layouts of the drivers' preupdate data that the fast path knows. A
// driver's type is used through one of them only when reflection shows the
// same fields, types and offsets; otherwise the callback is made with
// reflect.MakeFunc (slower, same result).
type mattnPreData struct {
	Conn         unsafe.Pointer
	Op           int
	DatabaseName string
	TableName    string
	OldRowID     int64
	NewRowID     int64
}

// moderncPreData is modernc.org/sqlite's layout. idmap never reads its
// unexported fields: they are copied with the rest, for the driver's Old
// and New methods, which read them (h.cur).
type moderncPreData struct {
	tls          unsafe.Pointer
	pCsr         uintptr
	Op           int32
	DatabaseName string
	TableName    string
	OldRowID     int64
	NewRowID     int64
}

// preupdateSlowPath turns the layout-checked callback off, for
// connections opened after it is set (tests: the reflection path).
var preupdateSlowPath atomic.Bool

// registerPre registers the preupdate hook; false if the base has none of a
// shape idmap knows.
func (h *sqliteHooks) registerPre() bool {
	m := reflect.ValueOf(h.base).MethodByName("RegisterPreUpdateHook")
	if !m.IsValid() || m.Type().NumIn() != 1 || m.Type().NumOut() != 0 {
		return false
	}
	ft := m.Type().In(0)
	if ft.Kind() != reflect.Func || ft.NumIn() != 1 || ft.NumOut() != 0 {
		return false
	}
	dt := ft.In(0)
	if dt.Kind() != reflect.Struct {
		return false
	}
	var idx [5]int
	for i, name := range []string{"Op", "DatabaseName", "TableName", "OldRowID", "NewRowID"} {
		f, ok := dt.FieldByName(name)
		if !ok || len(f.Index) != 1 {
			return false
		}
		switch {
		case i == 0 && f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64:
		case (i == 1 || i == 2) && f.Type.Kind() == reflect.String:
		case i >= 3 && f.Type.Kind() == reflect.Int64:
		default:
			return false
		}
		idx[i] = f.Index[0]
	}
	pt := reflect.PointerTo(dt)
	oldM, ok1 := pt.MethodByName("Old")
	newM, ok2 := pt.MethodByName("New")
	want := reflect.TypeOf(func(unsafe.Pointer, ...any) error { return nil })
	if !ok1 || !ok2 || !sameShape(oldM.Type, want) || !sameShape(newM.Type, want) {
		return false
	}
	h.pre.oldM, h.pre.newM = oldM, newM
	var cb reflect.Value
	switch {
	case !preupdateSlowPath.Load() && sameLayout(dt, reflect.TypeFor[mattnPreData]()):
		h.pre.old, h.pre.new = methodFunc(oldM), methodFunc(newM)
		f := func(d mattnPreData) {
			// A copy in h, not &d: d stays on the stack.
			h.mattnCur = d
			h.cur = unsafe.Pointer(&h.mattnCur)
			h.report(d.Op, d.DatabaseName, d.TableName, d.OldRowID, d.NewRowID)
			h.cur, h.mattnCur = nil, mattnPreData{}
		}
		cb = reflect.NewAt(ft, unsafe.Pointer(&f)).Elem()
	case !preupdateSlowPath.Load() && sameLayout(dt, reflect.TypeFor[moderncPreData]()):
		h.pre.old, h.pre.new = methodFunc(oldM), methodFunc(newM)
		f := func(d moderncPreData) {
			h.moderncCur = d
			h.cur = unsafe.Pointer(&h.moderncCur)
			h.report(int(d.Op), d.DatabaseName, d.TableName, d.OldRowID, d.NewRowID)
			h.cur, h.moderncCur = nil, moderncPreData{}
		}
		cb = reflect.NewAt(ft, unsafe.Pointer(&f)).Elem()
	default:
		cb = reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
			d := args[0]
			h.curRV = d
			h.report(int(d.Field(idx[0]).Int()), d.Field(idx[1]).String(), d.Field(idx[2]).String(), d.Field(idx[3]).Int(), d.Field(idx[4]).Int())
			h.curRV = reflect.Value{}
			return nil
		})
	}
	m.Call([]reflect.Value{cb})
	return true
}

// sameShape reports whether method type mt (receiver first) takes a
// pointer receiver and the rest of want's parameters and results.
func sameShape(mt, want reflect.Type) bool {
	if mt.NumIn() != want.NumIn() || mt.NumOut() != want.NumOut() || mt.IsVariadic() != want.IsVariadic() {
		return false
	}
	if mt.In(0).Kind() != reflect.Pointer {
		return false
	}
	for i := 1; i < mt.NumIn(); i++ {
		if mt.In(i) != want.In(i) {
			return false
		}
	}
	for i := 0; i < mt.NumOut(); i++ {
		if mt.Out(i) != want.Out(i) {
			return false
		}
	}
	return true
}

// sameLayout reports whether struct types a and b have the same fields in
// the same places, with types of the same representation (a pointer of any
// type and unsafe.Pointer alike).
func sameLayout(a, b reflect.Type) bool {
	if a.NumField() != b.NumField() || a.Size() != b.Size() {
		return false
	}
	for i := 0; i < a.NumField(); i++ {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || fa.Offset != fb.Offset || fa.Type.Size() != fb.Type.Size() {
			return false
		}
		ka, kb := fa.Type.Kind(), fb.Type.Kind()
		if ka == reflect.Pointer {
			ka = reflect.UnsafePointer
		}
		if ka != kb {
			return false
		}
	}
	return true
}

// methodFunc returns a method expression (receiver first) as a function of
// an unsafe.Pointer receiver: the same calling convention.
func methodFunc(m reflect.Method) func(unsafe.Pointer, ...any) error {
	fv := m.Func.Interface()
	words := (*[2]unsafe.Pointer)(unsafe.Pointer(&fv)) // type, data: a func is stored as itself
	return *(*func(unsafe.Pointer, ...any) error)(unsafe.Pointer(&words[1]))
}
