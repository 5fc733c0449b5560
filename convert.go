package idmap

import (
	"reflect"
	"strconv"
)

// conv says how Bind stores a value into a field of one type: Bind's own
// conversion of a row's values into an object's fields.
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
