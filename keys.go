package idmap

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// compositeKey is the key of a model with several primary-key columns.
type compositeKey [maxKeyParts]any

const maxKeyParts = 8

var (
	int64Type  = reflect.TypeFor[int64]()
	stringType = reflect.TypeFor[string]()
)

var valuerType = reflect.TypeFor[driver.Valuer]()

// keyTypeOf returns the type of the map keys of a key field of type t
// (field.keyTyp): t, but for a named type of kind int64, int or string
// that implements driver.Valuer neither on its value nor on its pointer
// (type UserID int64), whose keys are its basic type's values. Such a key
// is the same value to every map and to the driver (database/sql passes a
// named integer or string as its kind), and the typed paths of Get, the
// maps and the expiry records take it without an interface. A type with a
// Valuer keeps its own type, so that a query for the key gets the
// Valuer's value.
func keyTypeOf(t reflect.Type) reflect.Type {
	var basic reflect.Type
	switch t.Kind() {
	case reflect.Int64:
		basic = int64Type
	case reflect.Int:
		basic = intType
	case reflect.String:
		basic = stringType
	default:
		return t
	}
	if t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType) {
		return t
	}
	return basic
}

// convertKey converts v to a key for a field whose keys have type t
// (field.keyTyp).
//
// A map key is the primary-key value converted to the key field's Go
// type (or, for a named type, the type keyTypeOf gives), so
// Get[User](ctx, db, 1), Get[User](ctx, db, "1") and a loaded int64(1)
// are one key. A []byte field's key is a string (slices are not
// comparable); a pointer field's key is what it points to. A composite key is
// a compositeKey of its parts.
func convertKey(v any, t reflect.Type) (any, error) {
	// Fast paths for what drivers return and users pass most.
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("NULL")
	case int64:
		if t == int64Type {
			return v, nil
		}
	case string:
		if t == stringType {
			return v, nil
		}
	case int:
		if t == int64Type {
			return int64(x), nil
		}
	case []byte:
		switch t {
		case stringType:
			return string(x), nil
		case int64Type:
			// MySQL's text protocol sends integers as text.
			if n, ok := parseInt64(x); ok {
				return n, nil
			}
		}
	}
	if t.Kind() == reflect.Pointer {
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return nil, fmt.Errorf("NULL")
			}
			v = rv.Elem().Interface()
		}
		return convertKey(v, t.Elem())
	}
	if vr, ok := v.(driver.Valuer); ok && reflect.TypeOf(v) != t {
		dv, err := callValuer(vr)
		if err != nil {
			return nil, err
		}
		return convertKey(dv, t)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, fmt.Errorf("NULL")
		}
		rv = rv.Elem()
		v = rv.Interface()
	}
	out := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := toInt(rv)
		if err != nil {
			return nil, err
		}
		if out.OverflowInt(n) {
			return nil, fmt.Errorf("%d overflows %s", n, t)
		}
		out.SetInt(n)
		return out.Interface(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := toUint(rv)
		if err != nil {
			return nil, err
		}
		if out.OverflowUint(n) {
			return nil, fmt.Errorf("%d overflows %s", n, t)
		}
		out.SetUint(n)
		return out.Interface(), nil
	case reflect.String:
		switch rv.Kind() {
		case reflect.String:
			out.SetString(rv.String())
		case reflect.Slice:
			if rv.Type().Elem().Kind() != reflect.Uint8 {
				return nil, fmt.Errorf("cannot use %T", v)
			}
			out.SetString(string(rv.Bytes()))
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			out.SetString(strconv.FormatInt(rv.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			out.SetString(strconv.FormatUint(rv.Uint(), 10))
		default:
			return nil, fmt.Errorf("cannot use %T", v)
		}
		return out.Interface(), nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			switch rv.Kind() {
			case reflect.String:
				return rv.String(), nil
			case reflect.Slice:
				if rv.Type().Elem().Kind() == reflect.Uint8 {
					return string(rv.Bytes()), nil
				}
			}
		}
		return nil, fmt.Errorf("cannot use %T", v)
	case reflect.Float32, reflect.Float64:
		switch {
		case rv.CanFloat():
			out.SetFloat(rv.Float())
		case rv.CanInt():
			out.SetFloat(float64(rv.Int()))
		case rv.Kind() == reflect.String:
			f, err := strconv.ParseFloat(rv.String(), 64)
			if err != nil {
				return nil, fmt.Errorf("cannot use %q", rv.String())
			}
			out.SetFloat(f)
		default:
			return nil, fmt.Errorf("cannot use %T", v)
		}
		return out.Interface(), nil
	case reflect.Bool:
		switch {
		case rv.Kind() == reflect.Bool:
			out.SetBool(rv.Bool())
		case rv.CanInt() && (rv.Int() == 0 || rv.Int() == 1):
			out.SetBool(rv.Int() == 1)
		default:
			return nil, fmt.Errorf("cannot use %T", v)
		}
		return out.Interface(), nil
	}
	// Same kind only: reflect converts across kinds in ways a key must
	// not (an integer to a string gives the rune it numbers). A key is
	// compared in the maps: an incomparable type would panic there.
	if rv.Type() == t || rv.Type().ConvertibleTo(t) && rv.Kind() == t.Kind() {
		k := rv.Convert(t).Interface()
		if !t.Comparable() {
			return nil, fmt.Errorf("%s is not comparable", t)
		}
		return k, nil
	}
	if reflect.PointerTo(t).Implements(scannerType) {
		p := reflect.New(t)
		if err := p.Interface().(sql.Scanner).Scan(v); err != nil {
			return nil, err
		}
		if !t.Comparable() {
			return nil, fmt.Errorf("%s is not comparable", t)
		}
		return p.Elem().Interface(), nil
	}
	return nil, fmt.Errorf("cannot use %T", v)
}

// parseInt64 parses a decimal integer with an optional sign, without
// allocating; ok is false for anything else (the slow path decides).
func parseInt64(b []byte) (n int64, ok bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// callValuer returns vr's value; a nil pointer is NULL, without the call,
// which would panic for a Value method on the value type.
func callValuer(vr driver.Valuer) (v driver.Value, err error) {
	if rv := reflect.ValueOf(vr); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, nil
	}
	return vr.Value()
}

// toInt reads a key value as a signed integer: an integer, an integral
// float, or a decimal string or []byte. The error names the value; the
// caller's message names the field.
func toInt(rv reflect.Value) (int64, error) {
	switch {
	case rv.CanInt():
		return rv.Int(), nil
	case rv.CanUint():
		u := rv.Uint()
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("%d overflows int64", u)
		}
		return int64(u), nil
	case rv.CanFloat():
		f := rv.Float()
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, fmt.Errorf("%v is not an integer", f)
		}
		return int64(f), nil
	case rv.Kind() == reflect.String:
		n, err := strconv.ParseInt(strings.TrimSpace(rv.String()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", rv.String())
		}
		return n, nil
	case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8:
		n, err := strconv.ParseInt(strings.TrimSpace(string(rv.Bytes())), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", rv.Bytes())
		}
		return n, nil
	}
	return 0, fmt.Errorf("cannot use %s as an integer", rv.Type())
}

// toUint is toInt for an unsigned key type: negative values are an error.
func toUint(rv reflect.Value) (uint64, error) {
	if rv.CanUint() {
		return rv.Uint(), nil
	}
	if rv.Kind() == reflect.String || rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		var s string
		if rv.Kind() == reflect.Slice {
			s = string(rv.Bytes())
		} else {
			s = rv.String()
		}
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an unsigned integer", s)
		}
		return n, nil
	}
	n, err := toInt(rv)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%d is negative", n)
	}
	return uint64(n), nil
}

// keyOf converts the values given to Get (or found in an object) to the
// model's key.
func (m *model) keyOf(op string, vals []any) (any, error) {
	if len(vals) != len(m.pk) {
		return nil, errorf(ErrKey, "%s: %s has %d key column(s) (%s), got %d value(s)", op, m.name, len(m.pk), m.pkColumns(), len(vals))
	}
	if len(m.pk) == 1 {
		f := &m.fields[m.pk[0]]
		k, err := convertKey(vals[0], f.keyTyp)
		if err != nil {
			return nil, errorf(ErrKey, "%s: bad key value for %s.%s (column %q, %s): %v", op, m.name, f.name, f.column, f.typ, err)
		}
		return k, nil
	}
	if len(m.pk) > maxKeyParts {
		return nil, errorf(ErrKey, "%s: %s has more than %d key columns", op, m.name, maxKeyParts)
	}
	var ck compositeKey
	for i, fi := range m.pk {
		f := &m.fields[fi]
		k, err := convertKey(vals[i], f.keyTyp)
		if err != nil {
			return nil, errorf(ErrKey, "%s: bad key value for %s.%s (column %q, %s): %v", op, m.name, f.name, f.column, f.typ, err)
		}
		ck[i] = k
	}
	return ck, nil
}

// keyParts returns the key's values in column order, as arguments for SQL.
func (m *model) keyParts(key any) []any {
	if len(m.pk) == 1 {
		return []any{key}
	}
	ck := key.(compositeKey)
	return append([]any(nil), ck[:len(m.pk)]...)
}

// objKey returns the key of the object at p.
func (m *model) objKey(op string, p unsafe.Pointer) (any, error) {
	vals := make([]any, len(m.pk))
	for i, fi := range m.pk {
		vals[i] = m.fields[fi].value(p)
	}
	return m.keyOf(op, vals)
}

// pkColumns lists the model's key columns, in key order, for error texts.
func (m *model) pkColumns() string {
	cols := make([]string, len(m.pk))
	for i, fi := range m.pk {
		cols[i] = m.fields[fi].column
	}
	return strings.Join(cols, ", ")
}

// normKey turns a typed key into the form that expiry by key records, so
// that a key written by a statement (its arguments or literals) and a key
// loaded into any Go type on that table meet. It widens rather than narrows:
// integers and integral floats become int64, decimal strings become the
// integer they spell, other strings are folded to lower case with trailing
// spaces removed (MySQL's default collations compare so).
func normKey(k any) any {
	switch x := k.(type) {
	case compositeKey:
		for i, p := range x {
			if p != nil {
				x[i] = normKey(p)
			}
		}
		return x
	case int64:
		return x
	case string:
		return normString(x)
	case time.Time:
		return x.UTC().UnixNano()
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	}
	rv := reflect.ValueOf(k)
	switch {
	case rv.CanInt():
		return rv.Int()
	case rv.CanUint():
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u)
		}
		return rv.Uint()
	case rv.CanFloat():
		if f := rv.Float(); f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
			return int64(f)
		}
		return rv.Float()
	case rv.Kind() == reflect.String:
		return normString(rv.String())
	case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8:
		return normString(string(rv.Bytes()))
	}
	if vr, ok := k.(driver.Valuer); ok {
		if v, err := callValuer(vr); err == nil && v != nil {
			return normKey(v)
		}
	}
	return k
}

// normString is normKey for a string: cache.NormString's form, an int64
// or a string (the rule is the cache's, whose typed paths read the
// records of written string keys with it and no interface).
func normString(s string) any {
	n, str, isInt := cache.NormString(s)
	if isInt {
		return n
	}
	return str
}
