package idmap

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

var (
	intType      = reflect.TypeFor[int]()
	locationType = reflect.TypeFor[*time.Location]()
)

// Get's hit path (getHit) allocates nothing, for integer and string keys of any
// value. A caller's pk ...any is boxed on the caller's stack when Get does
// not let it escape; the rules below make that hold.
//
//   - The typed hit path (getHit) reads the key out of pk by value
//     (an int64, a string) and looks it up with the maps' typed lookups,
//     which put the key in an interface only on their rare paths.
//   - The rest of Get (getSlow) receives pk hidden from escape analysis
//     (hideArgs), and before anything else copies its values to the heap
//     (detachArgs): the values, and what they point to, may be on the
//     caller's stack, which may move and is gone once Get returns, so
//     nothing of pk may be kept, not even for a moment in the heap.

// typedHit is the object of a typed lookup if it is a hit, else nil.
func typedHit(p any, st cache.State) unsafe.Pointer {
	if st != cache.Fresh {
		return nil
	}
	return objPtr(p)
}

// Kinds of model.typedKey.
const (
	keyOther  = iota // composite, or of another type: the general path
	keyInt           // one int64 field
	keyIntInt        // one int field
	keyString        // one string field
)

func typedKeyOf(t reflect.Type) uint8 {
	switch t {
	case int64Type:
		return keyInt
	case intType:
		return keyIntInt
	case stringType:
		return keyString
	}
	return keyOther
}

// hideArgs returns pk through a uintptr, so that escape analysis does not
// see pk flow anywhere: the caller's boxes may stay on its stack. What
// receives the result must copy the values before keeping anything of them
// (detachArgs). No call happens between the conversion and the load, so the
// stack cannot move in between.
//
//go:nosplit
func hideArgs(pk []any) []any {
	if len(pk) == 0 {
		return nil
	}
	x := uintptr(unsafe.Pointer(unsafe.SliceData(pk)))
	return unsafe.Slice(*(**any)(unsafe.Pointer(&x)), len(pk))
}

// detachArgs returns heap copies of the values in pk (see hideArgs), in
// buf if they fit.
func detachArgs(op string, m *model, pk []any, buf *[maxKeyParts]any) ([]any, error) {
	var out []any
	if len(pk) <= len(buf) {
		out = buf[:len(pk)]
	} else {
		out = make([]any, len(pk))
	}
	for i, v := range pk {
		d, err := detachKey(v)
		if err != nil {
			return nil, errorf(ErrKey, "%s: bad key value for %s (value %d of %d): %v", op, m.name, i+1, len(pk), err)
		}
		out[i] = d
	}
	return out, nil
}

// detachKey returns a copy of v that shares no memory with it, but for
// *time.Location pointers (a time's zone, compared by identity) and the
// values of channels: a value that holds a map, a func or an unsafe.Pointer
// gives an error.
func detachKey(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		return x, nil
	case int:
		return x, nil
	case int32:
		return x, nil
	case uint64:
		return x, nil
	case string:
		return strings.Clone(x), nil
	case []byte:
		return bytes.Clone(x), nil
	case bool:
		return x, nil
	case float64:
		return x, nil
	}
	rv := reflect.ValueOf(v)
	nv := reflect.New(rv.Type()).Elem()
	if err := detachKeyInto(nv, rv, 0); err != nil {
		return nil, err
	}
	return nv.Interface(), nil
}

// maxDetachDepth bounds detachKeyInto's walk (a cyclic value has no end).
const maxDetachDepth = 32

// detachKeyInto copies src into dst, an addressable value of src's type,
// sharing no memory (see detachKey). src is only read: it may be a value of
// an unexported field.
func detachKeyInto(dst, src reflect.Value, depth int) error {
	if depth > maxDetachDepth {
		return fmt.Errorf("%s is nested deeper than %d", src.Type(), maxDetachDepth)
	}
	if !dst.CanSet() {
		dst = reflect.NewAt(dst.Type(), unsafe.Pointer(dst.UnsafeAddr())).Elem()
	}
	switch src.Kind() {
	case reflect.Bool:
		dst.SetBool(src.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		dst.SetInt(src.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		dst.SetUint(src.Uint())
	case reflect.Float32, reflect.Float64:
		dst.SetFloat(src.Float())
	case reflect.Complex64, reflect.Complex128:
		dst.SetComplex(src.Complex())
	case reflect.String:
		dst.SetString(strings.Clone(src.String()))
	case reflect.Chan:
		// A channel is made by make, always in the heap: keep it.
		*(*unsafe.Pointer)(unsafe.Pointer(dst.UnsafeAddr())) = src.UnsafePointer()
	case reflect.Pointer:
		if src.IsNil() {
			return nil
		}
		if src.Type() == locationType {
			// A time's zone: compared by identity, and made in the heap
			// (time.UTC, time.Local, LoadLocation, FixedZone).
			*(*unsafe.Pointer)(unsafe.Pointer(dst.UnsafeAddr())) = src.UnsafePointer()
			return nil
		}
		p := reflect.New(src.Type().Elem())
		if err := detachKeyInto(p.Elem(), src.Elem(), depth+1); err != nil {
			return err
		}
		*(*unsafe.Pointer)(unsafe.Pointer(dst.UnsafeAddr())) = p.UnsafePointer()
	case reflect.Struct:
		for i := range src.NumField() {
			if err := detachKeyInto(dst.Field(i), src.Field(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Array:
		for i := range src.Len() {
			if err := detachKeyInto(dst.Index(i), src.Index(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return nil
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			if err := detachKeyInto(s.Index(i), src.Index(i), depth+1); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Interface:
		if src.IsNil() {
			return nil
		}
		e := src.Elem()
		c := reflect.New(e.Type()).Elem()
		if err := detachKeyInto(c, e, depth+1); err != nil {
			return err
		}
		dst.Set(c)
	default: // Map, Func, UnsafePointer
		return fmt.Errorf("a key value of type %s holds a %s, which idmap does not copy", src.Type(), src.Kind())
	}
	return nil
}
