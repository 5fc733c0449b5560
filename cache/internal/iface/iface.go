// Package iface takes interface values that hold pointers apart into their
// two words, and puts them back together.
//
// The invariant, on which the whole package rests: an interface value is
// two words, a type word then a data word, and a value of a pointer type is
// stored in the data word itself (no box). So for p of type *T and x =
// any(p), Data(x) is p, and Make(TypeOf(x), q) is any(q) for every q of
// type *T. Go's toolchain has laid interfaces out this way since Go 1.4;
// iface_test.go checks it against reflect, which knows the layout too.
//
// Make is only sound with a type word taken from an interface that held a
// pointer type, and a data word that is nil or points to a value of that
// type: the caller guarantees it.
package iface

import "unsafe"

// Type is what an interface's type word points to: the runtime's
// description of the dynamic type. It is opaque.
type Type struct{ _ [0]func() }

// eface is the layout of an empty interface.
type eface struct {
	typ  *Type
	data unsafe.Pointer
}

// TypeOf returns x's type word (nil for a nil interface).
func TypeOf(x any) *Type { return (*eface)(unsafe.Pointer(&x)).typ }

// Data returns x's data word: for a pointer, the pointer itself.
func Data(x any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&x)).data }

// Make returns the interface with type word t and data word p. t must come
// from an interface that held a pointer type, and p be nil or point to a
// value of that type.
func Make(t *Type, p unsafe.Pointer) (x any) {
	e := (*eface)(unsafe.Pointer(&x))
	e.typ, e.data = t, p
	return x
}
