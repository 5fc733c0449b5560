package idmap

import (
	"context"
	"reflect"
	"strings"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// GetMany returns the objects of type T with the given keys, in key order,
// with nil where no row exists. For a single-column key each element of
// keys is one key value; for a composite key each is a []any of the key's
// values in column order. Fresh objects come from the map of ctx's scope
// (or q's transaction, or the shared map) with no query; the misses load in
// one query per chunk of keys (chunks keep under each dialect's limit on
// placeholders). This is how to remove N+1 queries: load the articles, then
// GetMany their authors.
//
// With the keys in a slice of another type than []any (a []int64), call
// GetByKeys.
func GetMany[T any](ctx context.Context, q Querier, keys ...any) ([]*T, error) {
	return getMany[T](ctx, "GetMany", q, keys)
}

// getMany is GetMany and GetByKeys; op names the one called, in errors.
func getMany[T any](ctx context.Context, op string, q Querier, keys []any) ([]*T, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := mappedModelOf[T](op)
	if err != nil {
		return nil, err
	}
	typed := make([]any, len(keys))
	for i, k := range keys {
		vals := []any{k}
		if len(m.pk) > 1 {
			parts, ok := k.([]any)
			if !ok {
				return nil, errorf(ErrKey, "%s: key %d of %s: want a []any of %d values (%s), got %T%s", op, i, m.name, len(m.pk), m.pkColumns(), k, sliceKeyHint(m, op, k))
			}
			vals = parts
		}
		if typed[i], err = m.keyOf(op, vals); err != nil {
			if hint := sliceKeyHint(m, op, k); hint != "" {
				return nil, errorf(ErrKey, "%s: key %d of %s is a %T%s", op, i, m.name, k, hint)
			}
			return nil, err
		}
	}
	if q == nil || isNilPointer(q) {
		return nil, errorf(ErrNotIdmap, "%s[%s]: nil Querier", op, m.name)
	}
	db, cm, err := resolve(ctx, op, q, m)
	if err != nil {
		return nil, err
	}
	out := make([]*T, len(keys))
	var missing []any // distinct keys to load
	seen := map[any]bool{}
	refresh := refreshFrom(ctx)
	for i, k := range typed {
		if !refresh {
			if p, st := cm.Lookup(m.ctype, k); st == cache.Fresh {
				out[i] = as[T](p)
				continue
			}
		}
		if !seen[k] {
			seen[k] = true
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	loaded := make(map[any]*T, len(missing))
	chunk := db.dialect.maxParams() / len(m.pk)
	for start := 0; start < len(missing); start += chunk {
		part := missing[start:min(start+chunk, len(missing))]
		query, args := m.selectManySQL(db.dialect, part)
		rs, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		var objs []*T
		if err := Bind(rs, &objs); err != nil {
			return nil, err
		}
		// The rows come in any order: each object is matched to its key
		// by the key read from it.
		for _, o := range objs {
			k, err := m.objKey("GetMany", unsafe.Pointer(o))
			if err != nil {
				return nil, err
			}
			loaded[k] = o
		}
	}
	for i, k := range typed {
		if out[i] == nil {
			out[i] = loaded[k]
		}
	}
	return out, nil
}

// maxParams is how many placeholders one statement of GetMany uses at most:
// well under SQLite's 32,766 (999 before 3.32), MySQL's and PostgreSQL's
// 65,535.
func (d dialect) maxParams() int {
	if d == dialectSQLite || d == dialectGeneric {
		return 999
	}
	return 10000
}

// selectManySQL returns the statement that loads the objects of keys, and
// its arguments: WHERE pk IN (…), or (a, b) IN ((…), …) for a composite key.
func (m *model) selectManySQL(d dialect, keys []any) (string, []any) {
	base, head := m.selectSQL(d)
	base = base[:head]
	var b strings.Builder
	b.WriteString(base)
	b.WriteString(" WHERE ")
	args := make([]any, 0, len(keys)*len(m.pk))
	n := 0
	if len(m.pk) == 1 {
		d.quoteName(&b, m.fields[m.pk[0]].column)
		b.WriteString(" IN (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(d.placeholder(n))
			args = append(args, k)
		}
		b.WriteString(")")
		return b.String(), args
	}
	b.WriteString("(")
	for i, fi := range m.pk {
		if i > 0 {
			b.WriteString(", ")
		}
		d.quoteName(&b, m.fields[fi].column)
	}
	b.WriteString(") IN (")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j, part := range m.keyParts(k) {
			if j > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(d.placeholder(n))
			args = append(args, part)
		}
		b.WriteString(")")
	}
	b.WriteString(")")
	return b.String(), args
}

// GetByKeys is GetMany with its keys in a slice of any type K: what the
// caller usually holds (the author IDs of a page of books, a []int64). It
// returns the objects of type T with those keys, in key order, with nil
// where no row exists; hits come from the map, misses load in one query
// per chunk, as with GetMany. K is inferred:
//
//	ids := []int64{3, 1, 2}
//	users, err := idmap.GetByKeys[User](ctx, db, ids)
//
// For a composite key, each element is the key's values in column order:
// K is []any (or another slice type, such as []int64 when every key column
// takes an integer).
func GetByKeys[T any, K any](ctx context.Context, q Querier, keys []K) ([]*T, error) {
	args := make([]any, len(keys))
	m, err := mappedModelOf[T]("GetByKeys")
	if err != nil {
		return nil, err
	}
	composite := len(m.pk) > 1
	for i, k := range keys {
		if composite {
			if parts, ok := sliceParts(k); ok {
				args[i] = parts
				continue
			}
		}
		args[i] = k
	}
	return getMany[T](ctx, "GetByKeys", q, args)
}

// sliceParts returns the elements of a key given as a slice or an array
// (other than []any, which GetMany takes as it is), as a []any.
func sliceParts(k any) ([]any, bool) {
	if parts, ok := k.([]any); ok {
		return parts, true
	}
	v := reflect.ValueOf(k)
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return nil, false
	}
	parts := make([]any, v.Len())
	for i := range parts {
		parts[i] = v.Index(i).Interface()
	}
	return parts, true
}

// sliceKeyHint returns, for a key value that is a slice of keys passed as
// one key (GetMany(ctx, db, ids) with ids a []int64), the advice to call
// GetByKeys instead; "" otherwise. A []byte is a key value of its own.
func sliceKeyHint(m *model, op string, k any) string {
	if k == nil {
		return ""
	}
	t := reflect.TypeOf(k)
	if t.Kind() != reflect.Slice || t.Elem().Kind() == reflect.Uint8 {
		return ""
	}
	if len(m.pk) > 1 && t == reflect.TypeFor[[]any]() {
		return "" // a composite key's values
	}
	if op != "GetMany" {
		return "; each element of keys is one key"
	}
	if len(m.pk) > 1 {
		return "; give each key as a []any of its values, or call idmap.GetByKeys[" + m.name + "](ctx, q, keys) with a slice of keys"
	}
	return "; to pass a slice of keys, call idmap.GetByKeys[" + m.name + "](ctx, q, keys) (or GetMany(ctx, q, keys...) with a []any)"
}
