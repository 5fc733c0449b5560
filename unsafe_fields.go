package idmap

import (
	"reflect"
	"unsafe"
)

// value returns the field's value in the object at p.
func (f *field) value(p unsafe.Pointer) any {
	return reflect.NewAt(f.typ, unsafe.Add(p, f.offset)).Elem().Interface()
}

// copyField copies field f from src to dst.
func (f *field) copy(dst, src unsafe.Pointer) {
	reflect.NewAt(f.typ, unsafe.Add(dst, f.offset)).Elem().Set(reflect.NewAt(f.typ, unsafe.Add(src, f.offset)).Elem())
}

// copyTemps copies the temporary (db:"-") fields of src to dst: a refresh
// in the shared map starts the new object with the old one's.
func (m *model) copyTemps(dst, src unsafe.Pointer) {
	for i := range m.temps {
		m.temps[i].copy(dst, src)
	}
}

// newObj returns a new zero object of the model's type: a *T in an
// interface, as the maps hold objects, and the same pointer.
func (m *model) newObj() (any, unsafe.Pointer) {
	v := reflect.New(m.typ)
	return v.Interface(), v.UnsafePointer()
}

// obj returns p, a pointer to an object of the model's type, as the maps
// hold objects: a *T in an interface.
func (m *model) obj(p unsafe.Pointer) any { return reflect.NewAt(m.typ, p).Interface() }

// assign stores v, a value that Rows.Scan put in an *any (so a []byte is
// already a copy of the driver's), into field f of the object at p. It
// reports false, having stored nothing meaningful, when database/sql's
// conversion is needed: the caller then scans the row into the fields.
func (f *field) assign(p unsafe.Pointer, v any) bool {
	fp := unsafe.Add(p, f.offset)
	if f.conv == convPtr {
		if v == nil {
			*(*unsafe.Pointer)(fp) = nil
			return true
		}
		q := reflect.New(f.typ.Elem()).UnsafePointer()
		if !assignTo(f.elemConv, f.typ.Elem(), f.elemPtrType, q, v) {
			return false
		}
		*(*unsafe.Pointer)(fp) = q
		return true
	}
	return assignTo(f.conv, f.typ, f.ptrType, fp, v)
}

// storeBits stores the low bits of n into the integer of that many bits at
// fp, signed or not (two's complement keeps a value that fits).
func storeBits(fp unsafe.Pointer, bits int, n uint64) bool {
	switch bits {
	case 64:
		*(*uint64)(fp) = n
	case 32:
		*(*uint32)(fp) = uint32(n)
	case 16:
		*(*uint16)(fp) = uint16(n)
	case 8:
		*(*uint8)(fp) = uint8(n)
	default:
		return false
	}
	return true
}
