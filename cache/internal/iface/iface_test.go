package iface

import (
	"reflect"
	"testing"
	"unsafe"
)

type obj struct {
	id   int64
	name string
}

type named *obj

// TestLayout guards the package's invariant: an interface is a type word
// then a data word, and a pointer is its own data word.
func TestLayout(t *testing.T) {
	if got, want := unsafe.Sizeof(eface{}), unsafe.Sizeof(any(nil)); got != want {
		t.Fatalf("eface is %d bytes; an interface is %d", got, want)
	}
	p := &obj{id: 1}
	for _, x := range []any{p, named(p), &p.name, (*obj)(nil)} {
		if got, want := Data(x), reflect.ValueOf(x).UnsafePointer(); got != want {
			t.Errorf("Data(%T) = %p; reflect says %p", x, got, want)
		}
	}
	if TypeOf(any(p)) == TypeOf(any(named(p))) {
		t.Error("*obj and named have one type word")
	}
	if TypeOf(nil) != nil || Data(nil) != nil {
		t.Error("a nil interface has words")
	}
}

// TestMakeRoundTrip: Make of an interface's type word and another object's
// pointer is the interface of that object, equal to one the compiler made.
func TestMakeRoundTrip(t *testing.T) {
	a, b := &obj{id: 1}, &obj{id: 2, name: "b"}
	x := Make(TypeOf(any(a)), unsafe.Pointer(b))
	got, ok := x.(*obj)
	if !ok || got != b || got.name != "b" {
		t.Fatalf("Make = %#v; want %p", x, b)
	}
	if x != any(b) {
		t.Error("Make's interface differs from the compiler's")
	}
	if n := Make(TypeOf(any(a)), nil); n.(*obj) != nil {
		t.Error("Make with a nil pointer is not a nil *obj")
	}
}

// TestNoAllocs: taking an interface apart and making it again allocates
// nothing.
func TestNoAllocs(t *testing.T) {
	a := &obj{id: 1}
	var x any = a
	if n := testing.AllocsPerRun(100, func() {
		x = Make(TypeOf(x), Data(x))
	}); n != 0 {
		t.Errorf("%v allocations; want 0", n)
	}
}
