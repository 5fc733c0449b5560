package cache

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/go-idmap/idmap/cache/internal/iface"
)

// Objects cross the package's boundary as interfaces holding pointers, and
// live inside the maps as bare pointers (the interface's data word): a slot
// stays one word for the object, and the interface is made again from the
// Type's type word on the way out (package iface). ptr takes objects in,
// box gives them out; nothing else converts.

// ptr returns the pointer that obj holds, checking that obj is a non-nil
// pointer of t's Go type; the first object that t sees fixes that type.
func (t *Type) ptr(obj any) unsafe.Pointer {
	w := iface.TypeOf(obj)
	if p := iface.Data(obj); w == t.word.Load() && p != nil {
		return p
	}
	return t.bind(obj)
}

// bind is ptr's slow path: the first object of t, or a bad one.
func (t *Type) bind(obj any) unsafe.Pointer {
	rt := reflect.TypeOf(obj)
	if rt == nil || rt.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("cache: an object of %s is a %v, not a pointer", t.Name, rt))
	}
	if iface.Data(obj) == nil {
		panic(fmt.Sprintf("cache: an object of %s is a nil %v", t.Name, rt))
	}
	w := iface.TypeOf(obj)
	if t.word.CompareAndSwap(nil, w) || t.word.Load() == w {
		return iface.Data(obj)
	}
	want := iface.Make(t.word.Load(), nil)
	panic(fmt.Sprintf("cache: an object of %s is a %v; its objects are %T", t.Name, rt, want))
}

// box returns p as an interface holding a pointer of t's Go type, or nil
// when p is nil. p was stored through ptr, so t's type word is set.
func (t *Type) box(p unsafe.Pointer) any {
	if p == nil {
		return nil
	}
	return iface.Make(t.word.Load(), p)
}

// match returns the pointer that obj holds for Remove: nil for a nil obj
// (any object), and ok false when obj cannot be an object of t (it is of
// another type, or a nil pointer).
func (t *Type) match(obj any) (p unsafe.Pointer, ok bool) {
	if obj == nil {
		return nil, true
	}
	p = iface.Data(obj)
	return p, p != nil && iface.TypeOf(obj) == t.word.Load()
}

// checkChunks checks the loads of every chunk (checkLoads) and returns
// how many there are.
func checkChunks(typ *Type, chunks [][]Load) int {
	n := 0
	for _, c := range chunks {
		checkLoads(typ, c)
		n += len(c)
	}
	return n
}

// checkLoads checks every object of loads (see ptr) before PutAll stores
// any: a bad one panics with the map unchanged.
func checkLoads(t *Type, loads []Load) {
	for i := range loads {
		if !loads[i].Canonical {
			t.ptr(loads[i].Obj)
		}
	}
}
