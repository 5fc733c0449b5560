package idmap

import (
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
	convPtr                 // a pointer to a type whose conv is none of the above but convPtr or convNone
)

var (
	anyType   = reflect.TypeFor[any]()
	bytesOnly = reflect.TypeFor[[]byte]()
)

// convOf returns how Bind stores into a field of type t, and for a pointer,
// into what it points to.
func convOf(t reflect.Type) (c, elem conv) {
	if reflect.PointerTo(t).Implements(scannerType) {
		return convNone, convNone
	}
	switch {
	case t == timeType:
		return convTime, convNone
	case t == bytesOnly:
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

// assign stores v, a value that Rows.Scan put in an *any (so a []byte is
// already a copy of the driver's), into field f of the object at p. It
// reports false, having stored nothing meaningful, when database/sql's
// conversion is needed: the caller then scans the row into the fields.
func (f *field) assign(p unsafe.Pointer, v any) bool {
	fp := unsafe.Add(p, f.offset)
	if f.conv == convPtr {
		if v == nil {
			*(*unsafe.Pointer)(fp) = nil
			return true
		}
		q := reflect.New(f.typ.Elem()).UnsafePointer()
		if !assignTo(f.elemConv, f.typ.Elem(), q, v) {
			return false
		}
		*(*unsafe.Pointer)(fp) = q
		return true
	}
	return assignTo(f.conv, f.typ, fp, v)
}

// assignTo stores v at fp, of type t, as Rows.Scan would, or reports false.
func assignTo(c conv, t reflect.Type, fp unsafe.Pointer, v any) bool {
	switch c {
	case convInt:
		var n int64
		switch s := v.(type) {
		case int64:
			n = s
		case string:
			var err error
			if n, err = strconv.ParseInt(s, 10, int(t.Size()*8)); err != nil {
				return false
			}
		case []byte:
			var err error
			if n, err = strconv.ParseInt(bytesString(s), 10, int(t.Size()*8)); err != nil {
				return false
			}
		default:
			return false
		}
		switch t.Size() {
		case 8:
			*(*int64)(fp) = n
		case 4:
			if int64(int32(n)) != n {
				return false
			}
			*(*int32)(fp) = int32(n)
		case 2:
			if int64(int16(n)) != n {
				return false
			}
			*(*int16)(fp) = int16(n)
		case 1:
			if int64(int8(n)) != n {
				return false
			}
			*(*int8)(fp) = int8(n)
		default:
			return false
		}
		return true
	case convUint:
		var n uint64
		switch s := v.(type) {
		case int64:
			if s < 0 {
				return false
			}
			n = uint64(s)
		case string:
			var err error
			if n, err = strconv.ParseUint(s, 10, int(t.Size()*8)); err != nil {
				return false
			}
		case []byte:
			var err error
			if n, err = strconv.ParseUint(bytesString(s), 10, int(t.Size()*8)); err != nil {
				return false
			}
		default:
			return false
		}
		switch t.Size() {
		case 8:
			*(*uint64)(fp) = n
		case 4:
			if uint64(uint32(n)) != n {
				return false
			}
			*(*uint32)(fp) = uint32(n)
		case 2:
			if uint64(uint16(n)) != n {
				return false
			}
			*(*uint16)(fp) = uint16(n)
		case 1:
			if uint64(uint8(n)) != n {
				return false
			}
			*(*uint8)(fp) = uint8(n)
		default:
			return false
		}
		return true
	case convFloat64, convFloat32:
		bits := 64
		if c == convFloat32 {
			bits = 32
		}
		var x float64
		switch s := v.(type) {
		case float64:
			if c == convFloat32 {
				return false // Scan goes through the decimal text: leave it to Scan
			}
			x = s
		case string:
			var err error
			if x, err = strconv.ParseFloat(s, bits); err != nil {
				return false
			}
		case []byte:
			var err error
			if x, err = strconv.ParseFloat(bytesString(s), bits); err != nil {
				return false
			}
		default:
			return false
		}
		if c == convFloat32 {
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
			return false
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
		s, ok := v.(bool)
		if ok {
			*(*bool)(fp) = s
		}
		return ok
	case convAny:
		*(*any)(fp) = v
		return true
	}
	return false
}

// bytesString views b as a string for parsing; b must not change while the
// string is in use.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
