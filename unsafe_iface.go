package idmap

// The interface layout. An interface value is two words: a type word (the
// runtime's descriptor of the dynamic type; for a non-empty interface, an
// itab that leads to it) and a data word, which for a pointer is the
// pointer itself. idmap takes interfaces apart and makes them from those
// words, so that a field's address or an object of the maps becomes an
// interface without an allocation (fieldPtr, makeIface, objPtr), and a
// reflect.Type's descriptor address picks its model's slot (typeSlot).
// Every interface made here holds a pointer of the type its type word
// describes. unsafe_iface_test.go checks the layout against reflect.

import (
	"context"
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

// makeIface returns the interface of type word typ (from ifaceType of a
// pointer type) and data word p, a pointer of that type.
func makeIface(typ, p unsafe.Pointer) any {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, p
	return v
}

// fieldPtr returns, as an interface, a pointer to field f of the object at p,
// for rows.Scan. It does not allocate.
func (f *field) fieldPtr(p unsafe.Pointer) any { return makeIface(f.ptrType, f.addr(p)) }

// objPtr returns the pointer that obj, an object of the maps (a pointer in
// an interface), holds: the interface's data word.
func objPtr(obj any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&obj)).data }

// typeSlot returns the slot of t in modelFast, from its descriptor's
// address.
func typeSlot(t reflect.Type) int {
	return int(uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&t))[1])>>5) & (len(modelFast) - 1)
}

// bgTab and todoTab are the itab words of context.Background() and
// context.TODO() held as a context.Context.
var bgTab, todoTab = ctxTab(context.Background()), ctxTab(context.TODO())

func ctxTab(ctx context.Context) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&ctx))[0]
}

// isBackground reports whether ctx is context.Background() or
// context.TODO(), which carry no value: a hit path skips ctx.Value. A
// false answer only costs the lookup.
func isBackground(ctx context.Context) bool {
	t := ctxTab(ctx)
	return t == bgTab || t == todoTab
}
