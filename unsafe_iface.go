package idmap

import (
	"reflect"
	"unsafe"
)

// eface is the layout of an empty interface.
type eface struct {
	typ, data unsafe.Pointer
}

// ifaceType returns the type word of interfaces holding values of type t.
func ifaceType(t reflect.Type) unsafe.Pointer {
	v := reflect.Zero(t).Interface()
	return (*eface)(unsafe.Pointer(&v)).typ
}

// fieldPtr returns, as an interface, a pointer to field f of the object at p,
// for rows.Scan. It does not allocate.
func (f *field) fieldPtr(p unsafe.Pointer) any {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ = f.ptrType
	e.data = unsafe.Add(p, f.offset)
	return v
}

// objPtr returns the pointer that obj, an object of the maps (a pointer in
// an interface), holds: the interface's data word.
func objPtr(obj any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&obj)).data }

// typeSlot returns the slot of t in modelFast, from its descriptor's
// address.
func typeSlot(t reflect.Type) int {
	return int(uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&t))[1])>>5) & (len(modelFast) - 1)
}
