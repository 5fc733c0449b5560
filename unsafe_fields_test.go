package idmap

import (
	"database/sql"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

type fieldsObj struct {
	ID    int64          `db:"id"`
	Small int8           `db:"small"`
	U16   uint16         `db:"u16"`
	F32   float32        `db:"f32"`
	Name  string         `db:"name"`
	Raw   sql.RawBytes   `db:"raw"`
	Blob  []byte         `db:"blob"`
	At    time.Time      `db:"at"`
	Ok    bool           `db:"ok"`
	Ptr   *string        `db:"ptr"`
	Null  sql.NullString `db:"null"`
	Any   any            `db:"any"`
	Temp  string         `db:"-"`
}

func (fieldsObj) TableName() string { return "fields_obj" }

// TestFieldsByAddress guards unsafe_fields.go: reads, copies and stores by
// address reach the fields that reflect names, and what assign stores is
// what reflect reads back.
func TestFieldsByAddress(t *testing.T) {
	m := modelOf(reflect.TypeFor[fieldsObj]())
	if m.err != nil {
		t.Fatal(m.err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	vals := map[string]any{
		"id": int64(-9), "small": int64(-128), "u16": int64(65535), "f32": 1.5, "name": []byte("nom"),
		"raw": []byte("raw"), "blob": []byte{1, 2}, "at": at, "ok": true, "ptr": "p", "null": "n", "any": int64(3),
	}
	obj, p := m.newObj()
	o := obj.(*fieldsObj)
	if unsafe.Pointer(o) != p || m.obj(p) != obj {
		t.Fatal("newObj's interface and pointer differ")
	}
	for i := range m.fields {
		f := &m.fields[i]
		v := vals[f.column]
		if f.addr(p) != reflect.ValueOf(o).Elem().FieldByName(f.name).Addr().UnsafePointer() {
			t.Errorf("addr(%s) is not the field's address", f.name)
		}
		if !f.assign(p, v) && f.column != "raw" {
			t.Errorf("assign(%s, %#v) declined", f.name, v)
		}
	}
	want := fieldsObj{ID: -9, Small: -128, U16: 65535, F32: 1.5, Name: "nom", Blob: []byte{1, 2}, At: at, Ok: true,
		Null: sql.NullString{String: "n", Valid: true}, Any: int64(3)}
	o.Raw = nil
	if o.Ptr == nil || *o.Ptr != "p" {
		t.Errorf("Ptr = %v; want a pointer to p", o.Ptr)
	}
	o.Ptr = nil
	if !reflect.DeepEqual(*o, want) {
		t.Errorf("after assign:\n got %+v\nwant %+v", *o, want)
	}
	for i := range m.fields {
		f := &m.fields[i]
		if got, want := f.value(p), reflect.ValueOf(o).Elem().FieldByName(f.name).Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("value(%s) = %#v; want %#v", f.name, got, want)
		}
	}
	dst := &fieldsObj{Temp: "kept"}
	for i := range m.fields {
		m.fields[i].copy(unsafe.Pointer(dst), p)
	}
	if dst.Temp != "kept" || dst.Name != "nom" || dst.At != at {
		t.Errorf("copy of the columns gave %+v", *dst)
	}
	o.Temp = "temp"
	m.copyTemps(unsafe.Pointer(dst), p)
	if dst.Temp != "temp" {
		t.Errorf("copyTemps left Temp %q", dst.Temp)
	}
}

// TestSetPointersAndRawBytes: setPointers fills a []*T with the objects as
// reflect would; detachRawBytes gives a RawBytes field bytes of its own.
func TestSetPointersAndRawBytes(t *testing.T) {
	m := modelOf(reflect.TypeFor[fieldsObj]())
	a, b := &fieldsObj{ID: 1}, &fieldsObj{ID: 2}
	s := reflect.MakeSlice(reflect.TypeFor[[]*fieldsObj](), 2, 2)
	setPointers(s, 0, []cache.Load{{Obj: a}})
	setPointers(s, 1, []cache.Load{{Obj: b}})
	if got := s.Interface().([]*fieldsObj); got[0] != a || got[1] != b {
		t.Errorf("setPointers gave %v; want [%p %p]", got, a, b)
	}
	buf := []byte("driver buffer")
	a.Raw = buf
	for i := range m.fields {
		if f := &m.fields[i]; f.column == "raw" {
			f.detachRawBytes(unsafe.Pointer(a))
		}
	}
	buf[0] = 'X'
	if string(a.Raw) != "driver buffer" {
		t.Errorf("Raw = %q after the buffer changed: still shared", a.Raw)
	}
}
