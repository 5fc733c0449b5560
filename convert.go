package idmap

import (
	"database/sql"
	"reflect"
	"strconv"
	"time"
	"unsafe"
)

// Bind's own conversion of a row's values into an object's fields.
//
// database/sql's Rows.Scan converts each value with reflection unless the
// value's type is exactly the destination's (an int64 column scanned into an
// int field takes a reflect.Value, a string and strconv.ParseInt). Bind
// scans each row into *any destinations instead, which database/sql serves
// without reflection and under its own lock, and stores the values into the
// fields itself when the pair (value type, field type) is one whose result
// it knows to be the same as Scan's; the first value it does not know sends
// the whole row through Rows.Scan with the fields as destinations, so that
// every other case, and every error, is database/sql's own.
// TestConvertMatchesScan compares the two over every pair.

// conv says how Bind stores a value into a field of one type.
type conv uint8

const (
	convNone    conv = iota // through Rows.Scan only
	convInt                 // a signed integer kind; bits from the field's size
	convUint                // an unsigned integer kind
	convFloat64             // kind float64
	convFloat32             // kind float32
	convString              // kind string
	convBytes               // exactly []byte
	convTime                // exactly time.Time
	convBool                // kind bool
	convAny                 // exactly any
	convScanner             // a pointer to the type is an sql.Scanner
	convPtr                 // a pointer to a type whose conv (the field's elemConv) is neither convNone nor convPtr
)

var (
	anyType  = reflect.TypeFor[any]()
	boolType = reflect.TypeFor[bool]()
)

// convOf returns how Bind stores into a field of type t, and for a pointer,
// into what it points to.
func convOf(t reflect.Type) (c, elem conv) {
	if reflect.PointerTo(t).Implements(scannerType) {
		return convScanner, convNone
	}
	switch {
	case t == timeType:
		return convTime, convNone
	case t == bytesType:
		return convBytes, convNone
	case t == anyType:
		return convAny, convNone
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return convInt, convNone
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return convUint, convNone
	case reflect.Float64:
		return convFloat64, convNone
	case reflect.Float32:
		return convFloat32, convNone
	case reflect.String:
		return convString, convNone
	case reflect.Bool:
		return convBool, convNone
	case reflect.Pointer:
		if e, _ := convOf(t.Elem()); e != convNone && e != convPtr {
			return convPtr, e
		}
	}
	return convNone, convNone
}

// setConv sets how Bind stores into f, from its type.
func (f *field) setConv() {
	f.conv, f.elemConv = convOf(f.typ)
	if f.conv == convPtr {
		f.elemPtrType = ifaceType(reflect.PointerTo(f.typ.Elem()))
	}
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
		var dst any
		e := (*eface)(unsafe.Pointer(&dst))
		e.typ, e.data = ptrType, fp
		return dst.(sql.Scanner).Scan(v) == nil
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
			*(*string)(fp) = unsafe.String(unsafe.SliceData(s), len(s))
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

// scanText appends to buf the text that database/sql's asString gives for
// v, for the values whose text Scan parses or stores: strings, []byte,
// integers, floats and bools. ok is false for any other value.
func scanText(buf []byte, v any) (text []byte, ok bool) {
	switch s := v.(type) {
	case string:
		return append(buf, s...), true
	case []byte:
		return append(buf, s...), true
	case int64:
		return strconv.AppendInt(buf, s, 10), true
	case uint64:
		return strconv.AppendUint(buf, s, 10), true
	case float64:
		return strconv.AppendFloat(buf, s, 'g', -1, 64), true
	case float32:
		return strconv.AppendFloat(buf, float64(s), 'g', -1, 32), true
	case bool:
		return strconv.AppendBool(buf, s), true
	}
	return nil, false
}

// parseFloatText parses v's text (scanText) as Scan does into a float of
// the given bits.
func parseFloatText(v any, bits int) (float64, bool) {
	var buf [32]byte
	text, ok := scanText(buf[:0], v)
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseFloat(bytesString(text), bits)
	return x, err == nil
}
