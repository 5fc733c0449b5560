// Package ref holds an object weakly in one pointer word, so that a map's
// slot can hold either the object itself (a strong reference) or a weak
// pointer to it in the same field.
//
// The invariant: a weak.Pointer is one pointer word (the handle the runtime
// keeps for the object), and nothing else; its bits can be kept in an
// unsafe.Pointer, which the garbage collector traces, and turned back into
// a weak.Pointer later. The size checks below fail the build if that stops
// holding; ref_test.go checks that an object held only weakly is collected
// and that one held strongly elsewhere is found.
package ref

import (
	"unsafe"
	"weak"
)

// A weak.Pointer is one pointer word.
var _ [unsafe.Sizeof(weak.Pointer[byte]{}) - unsafe.Sizeof(unsafe.Pointer(nil))]struct{}
var _ [unsafe.Sizeof(unsafe.Pointer(nil)) - unsafe.Sizeof(weak.Pointer[byte]{})]struct{}

// Weak returns the word of a weak pointer to the object that p points
// into (the object's first byte: weak.Make tracks the object that holds
// it, whatever the pointer's static type).
func Weak(p unsafe.Pointer) unsafe.Pointer {
	w := weak.Make((*byte)(p))
	return *(*unsafe.Pointer)(unsafe.Pointer(&w))
}

// Value returns the object of a word that Weak made, or nil once the
// object has been collected.
func Value(w unsafe.Pointer) unsafe.Pointer {
	return unsafe.Pointer((*weak.Pointer[byte])(unsafe.Pointer(&w)).Value())
}
