package ref

import (
	"runtime"
	"testing"
	"unsafe"
)

type obj struct {
	id   int64
	name string
}

// TestWeakValue: the word of a weak pointer gives its object back while the
// object is held elsewhere, and nil once it has been collected.
func TestWeakValue(t *testing.T) {
	held := &obj{id: 1}
	w := Weak(unsafe.Pointer(held))
	runtime.GC()
	if got := Value(w); got != unsafe.Pointer(held) {
		t.Fatalf("Value = %p; want the held object %p", got, held)
	}
	runtime.KeepAlive(held)

	w2 := Weak(unsafe.Pointer(&obj{id: 2, name: "dropped"}))
	for range 10 {
		runtime.GC()
		if Value(w2) == nil {
			return
		}
	}
	t.Error("an object held only weakly survived 10 collections")
}

// TestWeakOneHandle: two words made for one object are equal (the runtime
// keeps one handle per object), so a slot's word can be compared.
func TestWeakOneHandle(t *testing.T) {
	o := &obj{id: 3}
	w1, w2 := Weak(unsafe.Pointer(o)), Weak(unsafe.Pointer(o))
	if w1 != w2 {
		t.Error("two weak words of one object differ")
	}
	runtime.KeepAlive(o)
}
