package idmap

// Objects and fields by address. Bind scans rows into objects it made
// (reflect.New of the model's type) and reads, copies and stores fields of
// objects by address. The invariant: p is a pointer to a live object of
// the model's type, and f.offset the field's offset that reflect gave, so
// f.addr(p) is the address of a value of type f.typ inside that object;
// what is stored there has f.typ's representation (assignTo stores only
// into the kinds the plan checked, a pointer field takes one pointer
// word). unsafe_fields_test.go checks reads, copies and stores against
// reflect.

import (
	"database/sql"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// addr returns the address of field f in the object at p.
func (f *field) addr(p unsafe.Pointer) unsafe.Pointer { return unsafe.Add(p, f.offset) }

// at returns field f of the object at p, addressable and settable.
func (f *field) at(p unsafe.Pointer) reflect.Value { return reflect.NewAt(f.typ, f.addr(p)).Elem() }

// value returns the field's value in the object at p.
func (f *field) value(p unsafe.Pointer) any { return f.at(p).Interface() }

// copy copies field f from src to dst.
func (f *field) copy(dst, src unsafe.Pointer) { f.at(dst).Set(f.at(src)) }

// detachRawBytes gives the sql.RawBytes field f of the object at p a copy
// of its bytes: Scan left it pointing into the driver's buffer.
func (f *field) detachRawBytes(p unsafe.Pointer) {
	b := (*sql.RawBytes)(f.addr(p))
	if *b != nil {
		*b = append(sql.RawBytes{}, *b...)
	}
}

// setPointers stores the objects of out, pointers of the slice's element
// type, into s, a []*T, from index off: its array is one pointer word per
// element, and s has at least off+len(out) of them.
func setPointers(s reflect.Value, off int, out []cache.Load) {
	if off < 0 || off+len(out) > s.Len() {
		panic("idmap: setPointers past the slice's end")
	}
	ps := unsafe.Slice((*unsafe.Pointer)(s.UnsafePointer()), s.Len())[off:]
	for i, o := range out {
		ps[i] = objPtr(o.Obj)
	}
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
	fp := f.addr(p)
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

// decimalDecompose is database/sql's interface of a decimal value that a
// driver returns; Rows.Scan composes it into a destination that has
// Compose rather than calling the destination's Scan.
type decimalDecompose interface {
	Decompose(buf []byte) (form byte, negative bool, coefficient []byte, exponent int32)
}

// assignTo stores v at fp, of type t, as Rows.Scan would, or reports false.
// ptrType is the type descriptor of *t (for convScanner).
func assignTo(c conv, t reflect.Type, ptrType, fp unsafe.Pointer, v any) bool {
	switch c {
	case convScanner:
		// Rows.Scan calls Scan for every value but a decimal that the
		// destination can compose: leave that one to it. An error is
		// left to it too, which calls Scan again and words the error.
		if _, ok := v.(decimalDecompose); ok {
			return false
		}
		return makeIface(ptrType, fp).(sql.Scanner).Scan(v) == nil
	case convInt:
		bits := int(t.Size() * 8)
		var n int64
		switch s := v.(type) {
		case int64:
			if bits < 64 && (s < -1<<(bits-1) || s > 1<<(bits-1)-1) {
				return false
			}
			n = s
		default:
			// Scan parses the value's text (strconv.ParseInt of what
			// asString gives): so does this.
			var buf [32]byte
			text, ok := scanText(buf[:0], v)
			if !ok {
				return false
			}
			var err error
			if n, err = strconv.ParseInt(bytesString(text), 10, bits); err != nil {
				return false
			}
		}
		return storeBits(fp, bits, uint64(n)) // n fits: its low bits are the value
	case convUint:
		bits := int(t.Size() * 8)
		var n uint64
		switch s := v.(type) {
		case int64:
			if s < 0 || (bits < 64 && uint64(s) > 1<<bits-1) {
				return false
			}
			n = uint64(s)
		case uint64:
			if bits < 64 && s > 1<<bits-1 {
				return false
			}
			n = s
		default:
			var buf [32]byte
			text, ok := scanText(buf[:0], v)
			if !ok {
				return false
			}
			var err error
			if n, err = strconv.ParseUint(bytesString(text), 10, bits); err != nil {
				return false
			}
		}
		return storeBits(fp, bits, n)
	case convFloat64, convFloat32:
		bits := 64
		if c == convFloat32 {
			bits = 32
		}
		var x float64
		switch s := v.(type) {
		case float64:
			if bits == 64 {
				x = s
				break
			}
			// Into a float32, Scan parses the float64's shortest text,
			// which may round to another float32 than float32(s) does.
			var ok bool
			if x, ok = parseFloatText(v, 32); !ok {
				return false
			}
		case float32:
			if bits == 32 {
				x = float64(s)
				break
			}
			var ok bool
			if x, ok = parseFloatText(v, 64); !ok {
				return false
			}
		default:
			var ok bool
			if x, ok = parseFloatText(v, bits); !ok {
				return false
			}
		}
		if bits == 32 {
			*(*float32)(fp) = float32(x)
		} else {
			*(*float64)(fp) = x
		}
		return true
	case convString:
		switch s := v.(type) {
		case string:
			*(*string)(fp) = s
		case []byte:
			// s is Scan's copy, referenced nowhere else: the string may
			// share it.
			*(*string)(fp) = bytesString(s)
		default:
			// Scan writes a number or a bool as text into a *string, and
			// into no other string type.
			if t != stringType {
				return false
			}
			text, ok := scanText(nil, v)
			if !ok {
				return false
			}
			*(*string)(fp) = string(text)
		}
		return true
	case convBytes:
		switch s := v.(type) {
		case []byte:
			*(*[]byte)(fp) = s // Scan's copy
		case string:
			*(*[]byte)(fp) = []byte(s)
		case nil:
			*(*[]byte)(fp) = nil
		default:
			return false
		}
		return true
	case convTime:
		s, ok := v.(time.Time)
		if ok {
			*(*time.Time)(fp) = s
		}
		return ok
	case convBool:
		b, ok := v.(bool)
		if !ok && t == boolType {
			// Scan converts into a *bool with driver.Bool.
			switch s := v.(type) {
			case int64:
				b, ok = s == 1, s == 0 || s == 1
			case uint64:
				b, ok = s == 1, s == 0 || s == 1
			case string:
				var err error
				b, err = strconv.ParseBool(s)
				ok = err == nil
			case []byte:
				var err error
				b, err = strconv.ParseBool(bytesString(s))
				ok = err == nil
			}
		}
		if ok {
			*(*bool)(fp) = b
		}
		return ok
	case convAny:
		*(*any)(fp) = v
		return true
	}
	return false
}
