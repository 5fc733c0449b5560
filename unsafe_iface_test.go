package idmap

import (
	"context"
	"reflect"
	"testing"
	"unsafe"
)

type ifaceObj struct {
	ID   int64
	Name string
}

// TestIfaceLayout guards unsafe_iface.go: an interface is a type word then
// a data word, a pointer is its own data word, and an interface made of
// ifaceType's word and a pointer equals the one the compiler makes.
func TestIfaceLayout(t *testing.T) {
	if unsafe.Sizeof(eface{}) != unsafe.Sizeof(any(nil)) {
		t.Fatalf("eface is %d bytes; an interface %d", unsafe.Sizeof(eface{}), unsafe.Sizeof(any(nil)))
	}
	o := &ifaceObj{ID: 1}
	if got := objPtr(o); got != unsafe.Pointer(o) {
		t.Errorf("objPtr = %p; want %p", got, o)
	}
	x := makeIface(ifaceType(reflect.TypeFor[*ifaceObj]()), unsafe.Pointer(o))
	if x != any(o) {
		t.Errorf("makeIface = %#v; want %p", x, o)
	}
	s := makeIface(ifaceType(reflect.TypeFor[*string]()), unsafe.Pointer(&o.Name))
	if p, ok := s.(*string); !ok || p != &o.Name {
		t.Errorf("makeIface of a field = %#v; want %p", s, &o.Name)
	}
}

// TestFieldPtr: fieldPtr gives, without allocating, the pointer to the
// field that reflect finds.
func TestFieldPtr(t *testing.T) {
	m := modelOf(reflect.TypeFor[ifaceObj]())
	o := &ifaceObj{ID: 7, Name: "seven"}
	for i := range m.fields {
		f := &m.fields[i]
		want := reflect.ValueOf(o).Elem().FieldByName(f.name).Addr().Interface()
		if got := f.fieldPtr(unsafe.Pointer(o)); got != want {
			t.Errorf("fieldPtr(%s) = %#v; want %#v", f.name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = m.fields[1].fieldPtr(unsafe.Pointer(o)) }); n != 0 {
		t.Errorf("fieldPtr: %v allocations; want 0", n)
	}
}

// TestTypeSlot: typeSlot reads a reflect.Type's descriptor address, the
// same for every reflect.Type of one type and in range.
func TestTypeSlot(t *testing.T) {
	a, b := reflect.TypeFor[ifaceObj](), reflect.ValueOf(ifaceObj{}).Type()
	if typeSlot(a) != typeSlot(b) {
		t.Error("two reflect.Types of one type have two slots")
	}
	for _, ty := range []reflect.Type{a, reflect.TypeFor[int](), reflect.TypeFor[[]string]()} {
		if s := typeSlot(ty); s < 0 || s >= len(modelFast) {
			t.Errorf("typeSlot(%v) = %d, out of range", ty, s)
		}
	}
}

// TestIsBackground: the contexts that carry no value are recognised, and
// no context that may carry one is.
func TestIsBackground(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type key struct{}
	for _, c := range []struct {
		ctx  context.Context
		want bool
	}{
		{context.Background(), true},
		{context.TODO(), true},
		{ctx, false},
		{context.WithValue(context.Background(), key{}, 1), false},
		{NewContext(context.Background()), false},
		{WithRefresh(context.Background()), false},
		{context.WithoutCancel(ctx), false},
	} {
		if got := isBackground(c.ctx); got != c.want {
			t.Errorf("isBackground(%v) = %v; want %v", c.ctx, got, c.want)
		}
	}
}
