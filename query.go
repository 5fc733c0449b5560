package idmap

import (
	"context"
	"log/slog"
	"reflect"
	"unsafe"
)

// Query runs query with args on q and binds every row into a []*T, as
// Bind(rows, &dst) does: for a mapped T the canonical objects, for any
// other struct (or a single column) new ones. No rows give an empty slice
// and no error. An error of the query itself is returned as the driver
// gave it; errors that idmap adds start with "idmap:".
//
// The rows go to the map of q's transaction (a transaction begun in a
// scope uses that scope), else of ctx's scope (NewContext, Middleware),
// else the shared map. Inside a request, pass the request's context.
//
// Query is what sqlx's Select, scany's Select and pgx's CollectRows do:
//
//	users, err := idmap.Query[User](ctx, db, "SELECT id, name FROM users WHERE name LIKE ?", "a%")
func Query[T any](ctx context.Context, q Querier, query string, args ...any) ([]*T, error) {
	out := []*T{}
	if err := queryBind(ctx, "Query", typeFor[T](), q, query, args, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueryOne runs query with args on q and binds its first row, as
// Bind(rows, &dst) does with a **T: for a mapped T the canonical object.
// No row gives sql.ErrNoRows (test it with errors.Is); rows after the
// first are not read. Like Query, it returns an error of the query itself
// as the driver gave it, and takes its map from ctx or q's transaction.
//
// QueryOne is what sqlx's Get, scany's Get and pgx's CollectOneRow do:
//
//	u, err := idmap.QueryOne[User](ctx, tx, "SELECT id, name FROM users WHERE id = ? FOR UPDATE", 42)
func QueryOne[T any](ctx context.Context, q Querier, query string, args ...any) (*T, error) {
	var out *T
	if err := queryBind(ctx, "QueryOne", typeFor[T](), q, query, args, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// queryBind is Query and QueryOne (op) of type t: it runs query with args
// on q and binds the rows into dst.
func queryBind(ctx context.Context, op string, t reflect.Type, q Querier, query string, args []any, dst any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if q == nil || isNilPointer(q) {
		return errorf(ErrNotIdmap, "%s[%s]: nil Querier", op, t)
	}
	rs, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return Bind(rs, dst)
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
	m, err := mappedModel(typeFor[T](), "GetByKeys")
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

// Copy returns a new object with obj's values, which the caller owns: it is
// in no map, and changing it changes nothing that Get, Bind or Cached
// return, until the change is written to the database and committed. That
// is how to change a row loaded in the shared map, whose objects other
// goroutines may be reading:
//
//	u, err := idmap.Get[User](ctx, db, 42) // shared: read it, never write it
//	c := idmap.Copy(u)
//	c.Name = "bea"
//	_, err = db.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", c.Name, c.ID)
//	// the UPDATE expires key 42: the next Get loads a new object named "bea"
//
// Column fields that hold memory (slices such as []byte and sql.RawBytes,
// maps, and pointers such as a *string for a column that may be NULL) get
// a copy of it one level deep, so that the copy shares no column value with obj. Other
// fields, temporary ones (db:"-") included, are copied as an assignment
// copies them. Copy of nil is nil. T need not be mapped.
//
// Copy only reads obj. Reading an object of the shared map is safe (idmap
// never writes to an object it has handed out there); its temporary fields
// are safe to read only if no goroutine writes them at the same time.
func Copy[T any](obj *T) *T {
	if obj == nil {
		return nil
	}
	c := new(T)
	*c = *obj
	m := modelOf(typeFor[T]())
	if m.scalar {
		switch v := reflect.ValueOf(c).Elem(); v.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
			copyMemory(v)
		}
		return c
	}
	for i := range m.fields {
		f := &m.fields[i]
		switch f.typ.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
			copyMemory(reflect.NewAt(f.typ, unsafe.Add(unsafe.Pointer(c), f.offset)).Elem())
		}
	}
	return c
}

// copyMemory replaces the slice, map or pointer in v (settable) with a copy
// of what it refers to, one level deep (through pointers, down to their
// first non-pointer value, whose own slice or map is copied too).
func copyMemory(v reflect.Value) {
	if v.IsNil() {
		return
	}
	switch v.Kind() {
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(s, v)
		v.Set(s)
	case reflect.Map:
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), it.Value())
		}
		v.Set(c)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(v.Elem())
		switch p.Elem().Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
			copyMemory(p.Elem())
		}
		v.Set(p)
	}
}

// noteUnscopedBind logs, at level Debug, a Bind of a mapped type into the
// shared map of a database that has run queries in scopes: often a query
// in a request that was not given the request's context, whose rows then
// are not the objects Get returns in the request's scope. Until the
// database has seen a scope it costs one atomic load; after, a lookup of
// its Logger too.
func noteUnscopedBind(r *rows, m *model) {
	if !r.db.sawScope.Load() {
		return
	}
	l := loggerOf(r.db.cdb)
	if l == nil || !l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.Debug("idmap: rows bound outside a scope",
		slog.String("db", r.db.cdb.Name()), slog.String("type", m.name), slog.String("table", m.table),
		slog.String("note", "the query's context carries no scope: its objects are the shared map's, not those Get returns in a scope"))
}
