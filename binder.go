package idmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// Querier runs queries: *sql.DB, *sql.Tx and *sql.Conn are Queriers.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

var (
	_ Querier = (*sql.DB)(nil)
	_ Querier = (*sql.Tx)(nil)
	_ Querier = (*sql.Conn)(nil)
)

func typeFor[T any]() reflect.Type { return reflect.TypeFor[T]() }

var rawBytesType = reflect.TypeFor[sql.RawBytes]()

// Bind scans rows into dst and closes them. dst is one of:
//
//	*[]*T  every row; for a mapped T, canonical pointers from the map
//	**T    the first row (sql.ErrNoRows if there is none); canonical for a mapped T
//	*[]T   every row, for a T that is not mapped (a struct or a single column)
//	*T     the first row, for a T that is not mapped
//
// Columns are matched to fields by name (see Model); a column with no field
// is an error. For a mapped T, a row whose key is already in the map gives
// the canonical object and its values are discarded, unless the entry is
// expired, the query was a locking read, or its context had WithRefresh: then
// the canonical object is refreshed. A Bind that fails changes no map.
//
// The map the objects go to follows the query: its transaction's map (a
// transaction begun in a scope uses that scope), else the scope of the
// context it ran with (NewContext, Middleware), else the shared map. Inside a request, a query run without the request's context
// binds into the shared map, and Get with the request's context returns
// another pointer for the same row; with a Logger, a database on which
// queries have run in scopes logs such a Bind at level Debug. Query and
// QueryOne run a query and Bind its rows in one call.
func Bind(rs *sql.Rows, dst any) error {
	if rs == nil {
		return errorf(ErrBadDestination, "Bind: nil *sql.Rows")
	}
	err := bind(rs, dst)
	if cerr := rs.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// shape is the form of a Bind destination.
type shape uint8

const (
	shapeSliceOfPtr shape = iota // *[]*T
	shapePtrPtr                  // **T
	shapeSlice                   // *[]T
	shapePtr                     // *T
)

func parseDst(dst any) (shape, reflect.Value, reflect.Type, error) {
	if dst == nil {
		return 0, reflect.Value{}, nil, errorf(ErrBadDestination, "Bind: dst is nil; want *[]*T, **T, *[]T or *T")
	}
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer {
		return 0, v, nil, errorf(ErrBadDestination, "Bind: dst is a %s, not a pointer; want *[]*T, **T, *[]T or *T", v.Type())
	}
	if v.IsNil() {
		return 0, v, nil, errorf(ErrBadDestination, "Bind: dst is a nil %s", v.Type())
	}
	t := v.Type().Elem()
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Pointer && t != rawBytesType:
		return shapeSliceOfPtr, v, t.Elem().Elem(), nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		return shapeSlice, v, t.Elem(), nil
	case t.Kind() == reflect.Pointer && t.Elem().Kind() != reflect.Pointer:
		return shapePtrPtr, v, t.Elem(), nil
	case t.Kind() == reflect.Pointer:
		return 0, v, nil, errorf(ErrBadDestination, "Bind: dst is a %s; want *[]*T, **T, *[]T or *T", v.Type())
	}
	return shapePtr, v, t, nil
}

// plan says where each column of a result goes. A plan is read-only once
// built; each model keeps its last one for the next result with the same
// columns.
type plan struct {
	cols    []string // the result's columns
	applyFn cache.Apply
	fields  []*field // by column
	partial bool     // the columns do not cover every field
	pkCols  []int    // column of each key field, in key order
	raw     []*field // sql.RawBytes fields, copied after Scan
	direct  bool     // every field has a conv: Bind stores the values itself
}

func (m *model) plan(cols []string) (*plan, error) {
	if p := m.lastPlan.Load(); p != nil && slices.Equal(p.cols, cols) {
		return p, nil
	}
	p := &plan{cols: slices.Clone(cols), fields: make([]*field, len(cols))}
	p.applyFn = p.apply
	covered := make([]bool, len(m.fields))
	n := 0
	for i, c := range cols {
		fi, ok := m.byCol[c]
		if !ok {
			fi, ok = m.byFold[strings.ToLower(c)]
		}
		if !ok {
			return nil, errorf(ErrNoField, "Bind column index %d, name %q: no field in %s", i, c, m.name)
		}
		if covered[fi] {
			// Two result columns for one field: which one would win
			// depends on the order of the columns. Refuse, as for a
			// column with no field.
			j := slices.Index(p.fields[:i], &m.fields[fi])
			return nil, errorf(ErrDuplicateColumn, "Bind column index %d, name %q: column index %d, name %q, goes to the same field %s.%s (column %q)", i, c, j, cols[j], m.name, m.fields[fi].name, m.fields[fi].column)
		}
		p.fields[i] = &m.fields[fi]
		covered[fi] = true
		n++
		if m.fields[fi].typ == rawBytesType {
			p.raw = append(p.raw, &m.fields[fi])
		}
	}
	p.partial = n < len(m.fields)
	p.direct = true
	for _, f := range p.fields {
		if f.conv == convNone {
			p.direct = false
		}
	}
	if m.mapped {
		p.pkCols = make([]int, len(m.pk))
		var missing []string
		for k, fi := range m.pk {
			p.pkCols[k] = -1
			for i, f := range p.fields {
				if f == &m.fields[fi] {
					p.pkCols[k] = i
					break
				}
			}
			if p.pkCols[k] < 0 {
				missing = append(missing, m.fields[fi].column)
			}
		}
		if len(missing) > 0 {
			return nil, errorf(ErrKey, "Bind: the result lacks primary-key column(s) %s of %s (table %q)", strings.Join(missing, ", "), m.name, m.table)
		}
	}
	m.lastPlan.Store(p)
	return p, nil
}

// apply copies the plan's fields from src to dst, two objects of the
// maps: a refresh in place.
func (p *plan) apply(dst, src any) {
	d, s := objPtr(dst), objPtr(src)
	for _, f := range p.fields {
		f.copy(d, s)
	}
}

// rawKey computes the key of the current row from the driver's values,
// before the row is scanned. ok is false when that cannot be done (the
// caller scans and reads the key from the object); a NULL key is an error.
func (p *plan) rawKey(m *model, r *rows) (key any, ok bool, err error) {
	if len(r.dest) != len(p.fields) {
		return nil, false, nil
	}
	if len(p.pkCols) == 1 {
		v := r.dest[p.pkCols[0]]
		if v == nil {
			return nil, false, nullKeyError(m, p.fields[p.pkCols[0]])
		}
		k, err := convertKey(v, p.fields[p.pkCols[0]].typ)
		return k, err == nil, nil
	}
	var ck compositeKey
	for i, c := range p.pkCols {
		v := r.dest[c]
		if v == nil {
			return nil, false, nullKeyError(m, p.fields[c])
		}
		k, err := convertKey(v, p.fields[c].typ)
		if err != nil {
			return nil, false, nil
		}
		ck[i] = k
	}
	return ck, true, nil
}

func nullKeyError(m *model, f *field) error {
	return errorf(ErrKey, "Bind: NULL in primary-key column %q of %s", f.column, m.name)
}

func bind(rs *sql.Rows, dst any) error {
	sh, dv, elem, err := parseDst(dst)
	if err != nil {
		return err
	}
	r, cols, err := rowsOf(rs)
	if err != nil {
		return err
	}
	m := modelOf(elem)
	if m.mapped {
		if sh == shapeSlice || sh == shapePtr {
			return errorf(ErrBadDestination, "Bind: %s is mapped: bind into *[]*%s or **%s, not by value", m.name, m.name, m.name)
		}
		if m.err != nil {
			return m.err
		}
	}
	first := sh == shapePtrPtr || sh == shapePtr
	buf := loadBufs.Get().(*[]cache.Load)
	defer putLoads(buf)
	out := (*buf)[:0]
	if m.scalar {
		if len(cols) != 1 {
			return errorf(ErrBadDestination, "Bind: %s takes one column, the result has %d", m.name, len(cols))
		}
		for rs.Next() {
			obj, _ := m.newObj()
			if err := rs.Scan(obj); err != nil {
				return fmt.Errorf("idmap: Bind %s: %w", m.name, err)
			}
			out = append(out, cache.Load{Obj: obj})
			*buf = out
			if first {
				break
			}
		}
	} else {
		pl, err := m.plan(cols)
		if err != nil {
			return err
		}
		out, err = scanRows(rs, r, m, pl, first, out)
		*buf = out
		if err != nil {
			return err
		}
		if m.mapped {
			commit(r, m, pl, out)
		}
	}
	if err := rs.Err(); err != nil {
		return err
	}
	if first && len(out) == 0 {
		return sql.ErrNoRows
	}
	store(sh, dv, m, out)
	return nil
}

// loadBufs recycles the slices in which Bind stages its rows.
var loadBufs = sync.Pool{New: func() any { s := make([]cache.Load, 0, 64); return &s }}

func putLoads(buf *[]cache.Load) {
	if cap(*buf) > 1<<14 {
		return // let a huge one go
	}
	clear((*buf)[:cap(*buf)]) // drop the references to objects and keys
	*buf = (*buf)[:0]
	loadBufs.Put(buf)
}

func scanRows(rs *sql.Rows, r *rows, m *model, pl *plan, first bool, out []cache.Load) ([]cache.Load, error) {
	var cur cache.Cursor // looks each row up before it is scanned; nil: no need
	if m.mapped && !r.refresh {
		cur = r.m().Cursor(m.ctype)
	}
	dest := make([]any, len(pl.fields))
	var vals []any      // with pl.direct: the row's values, scanned into dest's *any
	var fieldDest []any // with pl.direct: the fields' addresses, for a row Rows.Scan converts
	if pl.direct {
		vals = make([]any, len(pl.fields))
		for i := range vals {
			dest[i] = &vals[i]
		}
	}
	for rs.Next() {
		var key any
		keyOK := false
		if m.mapped {
			var err error
			key, keyOK, err = pl.rawKey(m, r)
			if err != nil {
				return nil, err
			}
			if keyOK && cur != nil {
				p, st := cur.Lookup(key)
				if st == cache.Fresh || (st == cache.Partial && pl.partial) {
					out = append(out, cache.Load{Key: key, Obj: p, Canonical: true})
					if first {
						break
					}
					continue
				}
			}
		}
		obj, p := m.newObj()
		if err := scanRow(rs, pl, p, dest, vals, &fieldDest); err != nil {
			return nil, fmt.Errorf("idmap: Bind %s: %w", m.name, err)
		}
		for _, f := range pl.raw {
			b := (*sql.RawBytes)(unsafe.Add(p, f.offset))
			if *b != nil {
				*b = append(sql.RawBytes{}, *b...)
			}
		}
		if m.mapped && !keyOK {
			k, err := m.objKey("Bind", p)
			if err != nil {
				return nil, err
			}
			key = k
		}
		out = append(out, cache.Load{Key: key, Obj: obj, Epoch: r.epoch, Partial: pl.partial, Refresh: r.refresh})
		if first {
			break
		}
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	// The rows must have ended cleanly before anything is stored: close them
	// now to learn about a late error.
	if err := rs.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanRow scans the current row into the object at p. With pl.direct, dest
// points into vals, and the values are stored by Bind itself where it can
// (convert.go); otherwise, and for a row with a value it cannot store, the
// fields' addresses (in dest, or in *fieldDest, made once) are given to
// Rows.Scan, which converts.
func scanRow(rs *sql.Rows, pl *plan, p unsafe.Pointer, dest, vals []any, fieldDest *[]any) error {
	if pl.direct {
		if err := rs.Scan(dest...); err != nil {
			return err
		}
		done := true
		for i, f := range pl.fields {
			if !f.assign(p, vals[i]) {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		if *fieldDest == nil {
			*fieldDest = make([]any, len(pl.fields))
		}
		dest = *fieldDest
	}
	for i, f := range pl.fields {
		dest[i] = f.fieldPtr(p)
	}
	return rs.Scan(dest...)
}

// commit offers the loaded objects to the map and replaces them with the
// canonical ones.
func commit(r *rows, m *model, pl *plan, out []cache.Load) {
	if r.scope == nil {
		noteUnscopedBind(r, m)
	}
	cm := r.m()
	if !r.refresh || cm.Scoped() {
		cm.PutAll(m.ctype, out, pl.applyFn)
		return
	}
	// Refreshing in the shared map replaces the entry with each load: one
	// object per key within one result.
	refreshed := make(map[any]any)
	for i := range out {
		if out[i].Canonical {
			continue
		}
		if p, ok := refreshed[out[i].Key]; ok {
			out[i].Obj = p
			continue
		}
		out[i].Obj = cm.Put(m.ctype, &out[i], pl.applyFn)
		refreshed[out[i].Key] = out[i].Obj
	}
}

func store(sh shape, dv reflect.Value, m *model, out []cache.Load) {
	switch sh {
	case shapeSliceOfPtr:
		s := reflect.MakeSlice(dv.Type().Elem(), len(out), len(out))
		if s.Type() == reflect.SliceOf(reflect.PointerTo(m.typ)) {
			ps := unsafe.Slice((*unsafe.Pointer)(s.UnsafePointer()), len(out))
			for i, o := range out {
				ps[i] = objPtr(o.Obj)
			}
		} else {
			for i, o := range out {
				s.Index(i).Set(reflect.ValueOf(o.Obj).Convert(s.Type().Elem()))
			}
		}
		dv.Elem().Set(s)
	case shapePtrPtr:
		dv.Elem().Set(reflect.ValueOf(out[0].Obj).Convert(dv.Type().Elem()))
	case shapeSlice:
		s := reflect.MakeSlice(dv.Type().Elem(), len(out), len(out))
		for i, o := range out {
			s.Index(i).Set(reflect.ValueOf(o.Obj).Elem())
		}
		dv.Elem().Set(s)
	case shapePtr:
		dv.Elem().Set(reflect.ValueOf(out[0].Obj).Elem())
	}
}

// Get returns the object of type T whose primary key is pk (one value per
// key column, converted to the key fields' types). A fresh object in the map
// of ctx's scope (or of q's transaction, or the shared map) is returned with
// no round trip to the database; otherwise one SELECT loads it. Absent rows
// give sql.ErrNoRows.
func Get[T any](ctx context.Context, q Querier, pk ...any) (*T, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := mappedModel(typeFor[T](), "Get")
	if err != nil {
		return nil, err
	}
	// The hit path of a *sql.DB and one integer or string key: the key is
	// read out of pk by value and looked up typed, so that pk does not
	// escape and the caller's interface boxes stay on its stack.
	if sdb, ok := q.(*sql.DB); ok && sdb != nil && len(pk) == 1 {
		if db := databaseOf(sdb); db != nil {
			if cs := stateFrom(ctx); !cs.refresh {
				if p, hit := db.lookupTyped(cs.scope, m, pk[0]); hit {
					return as[T](p), nil
				}
			}
		}
	}
	return getSlow[T](ctx, q, m, hideArgs(pk))
}

// getSlow is Get past its typed hit path. pk is hidden from escape analysis
// (hideArgs): its values may live on the caller's stack, so that they are
// copied to the heap (detachArgs) before anything else reads them.
func getSlow[T any](ctx context.Context, q Querier, m *model, pk []any) (*T, error) {
	var buf [maxKeyParts]any
	pk, err := detachArgs("Get", m, pk, &buf)
	if err != nil {
		return nil, err
	}
	key, err := m.keyOf("Get", pk)
	if err != nil {
		return nil, err
	}
	cs := stateFrom(ctx)
	sdb, isDB := q.(*sql.DB)
	if q == nil || isNilPointer(q) {
		return nil, errorf(ErrNotIdmap, "Get[%s]: nil Querier", m.name)
	}
	var db *database
	var cm cache.Map
	inTx := false // cm is the unit of work's scope, seen from inside a transaction
	if isDB {
		// The hit path: no probe, no view of the map.
		if db = databaseOf(sdb); db == nil {
			return nil, errorf(ErrNotIdmap, "Get[%s]: the *sql.DB was not opened through idmap", m.name)
		}
		if !cs.refresh {
			if p, st := db.lookup(cs.scope, m.ctype, key); st == cache.Fresh {
				return as[T](p), nil
			}
		}
		cm = db.mapFor(ctx)
	} else {
		r, err := probe(ctx, q)
		if err != nil {
			return nil, err
		}
		db, cm = r.db, r.m()
		inTx = r.txScope
		if !cs.refresh {
			if p, st := cm.Lookup(m.ctype, key); st == cache.Fresh {
				return as[T](p), nil
			}
		}
	}
	load := func() (any, error) {
		query, _ := m.selectSQL(db.dialect)
		rs, err := q.QueryContext(ctx, query, m.keyParts(key)...)
		if err != nil {
			return nil, err
		}
		var out *T
		if err := Bind(rs, &out); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				// The row is gone (a DELETE, a changed key): forget its
				// entry. Inside a transaction the unit of work's object
				// is kept (the DELETE that hid the row expired it): the
				// transaction may roll back, and the row is then the
				// same object again, refreshed at its next read.
				if !inTx {
					cm.Remove(m.ctype, key, nil)
				}
				db.cdb.CountMiss(cm.Scoped())
			}
			return nil, err
		}
		return out, nil
	}
	if cs.refresh || !flightQuerier(q) {
		p, err := load()
		return as[T](p), err
	}
	fk := flightKey{q: q, scope: cs.scope, typ: m.ctype, key: key}
	if !isDB {
		fk.scope = nil // a transaction's or connection's map: its own
	}
	p, err := loadOnce(ctx, fk, cm, m.ctype, load)
	return as[T](p), err
}

// as returns the object of the maps obj as a *T: nil for nil.
func as[T any](obj any) *T {
	p, _ := obj.(*T)
	return p
}

// Concurrent misses of one key load once. Goroutines that miss the same
// key of the same map through the same Querier (*sql.DB with the same
// scope, or the same *sql.Tx or *sql.Conn) wait for the first one's query
// instead of sending their own; then each looks the key up again, and takes
// the object only if it is fresh for it (a write that finished after the
// first query began makes the others load again), so that waiting never
// serves what a query of one's own would not.

type flightKey struct {
	q     Querier      // *sql.DB, *sql.Tx or *sql.Conn (comparable pointers)
	scope *cache.Scope // with a *sql.DB: the scope's map; nil: the shared map
	typ   *cache.Type
	key   any
}

// flightQuerier reports whether q can key a flight: the database/sql types,
// not a caller's own Querier (which need not be comparable).
func flightQuerier(q Querier) bool {
	switch q.(type) {
	case *sql.DB, *sql.Tx, *sql.Conn:
		return true
	}
	return false
}

type flight struct {
	done chan struct{} // closed when the load is over
}

var flights sync.Map // flightKey → *flight

// flightWaitHook, set by tests only, is called when a Get starts waiting
// for another's load.
var flightWaitHook func()

func loadOnce(ctx context.Context, fk flightKey, cm cache.Map, typ *cache.Type, load func() (any, error)) (any, error) {
	f := &flight{done: make(chan struct{})}
	if prev, loaded := flights.LoadOrStore(fk, f); loaded {
		if flightWaitHook != nil {
			flightWaitHook()
		}
		select {
		case <-prev.(*flight).done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if p, st := cm.Lookup(typ, fk.key); st == cache.Fresh {
			return p, nil
		}
		return load() // the first load failed, or is not fresh for us
	}
	defer func() {
		flights.CompareAndDelete(fk, f)
		close(f.done)
	}()
	return load()
}

// lookup looks key up in scope's map of db, or in db's shared map when
// scope is nil, without making a view of the map.
func (db *database) lookup(scope *cache.Scope, typ *cache.Type, key any) (any, cache.State) {
	if scope != nil {
		return scope.Lookup(db.cdb, typ, key)
	}
	return db.cdb.LookupShared(typ, key)
}

// mapFor returns the map that ctx selects in db: its scope's, or the shared
// map.
func (db *database) mapFor(ctx context.Context) cache.Map {
	if s := scopeFrom(ctx); s != nil {
		return s.In(db.cdb)
	}
	return db.cdb.Shared()
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// Cached returns what Get would return without a query: the fresh, complete
// object of type T with key pk in the map of ctx's scope (or q's
// transaction, or the shared map), or nil. q is a *sql.DB, *sql.Tx or
// *sql.Conn of an idmap database; for the last two, idmap learns their map
// from a statement its driver answers without a round trip to the server.
// A q of another database, a bad key or a type that is not mapped give nil.
func Cached[T any](ctx context.Context, q Querier, pk ...any) *T {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := mappedModel(typeFor[T](), "Cached")
	if err != nil {
		return nil
	}
	// Get's typed hit path (see Get): pk does not escape.
	if sdb, ok := q.(*sql.DB); ok && sdb != nil && len(pk) == 1 {
		if db := databaseOf(sdb); db != nil {
			if p, hit := db.lookupTyped(scopeFrom(ctx), m, pk[0]); hit {
				return as[T](p)
			}
		}
	}
	return cachedSlow[T](ctx, q, m, hideArgs(pk))
}

// cachedSlow is Cached past its typed hit path; pk is hidden (see getSlow).
func cachedSlow[T any](ctx context.Context, q Querier, m *model, pk []any) *T {
	var buf [maxKeyParts]any
	pk, err := detachArgs("Cached", m, pk, &buf)
	if err != nil {
		return nil
	}
	key, err := m.keyOf("Cached", pk)
	if err != nil {
		return nil
	}
	if sdb, ok := q.(*sql.DB); ok {
		d := databaseOf(sdb)
		if d == nil {
			return nil
		}
		if p, st := d.lookup(scopeFrom(ctx), m.ctype, key); st == cache.Fresh {
			return as[T](p)
		}
		return nil
	}
	if q == nil || isNilPointer(q) {
		return nil
	}
	r, err := probe(ctx, q)
	if err != nil {
		return nil
	}
	if p, st := r.m().Lookup(m.ctype, key); st == cache.Fresh {
		return as[T](p)
	}
	return nil
}

// Intern puts objects that were scanned or decoded elsewhere (sqlx, scany,
// JSON) into the map of ctx's scope (or q's transaction, or the shared
// map): each element is replaced by its canonical object, and objects whose
// key is not in the map become canonical. Intern trusts the objects to be
// current as of the call. q is a *sql.DB, *sql.Tx or *sql.Conn of an idmap
// database (for the last two, see Cached). Nothing is changed if an element
// is nil or has a bad key.
func Intern[T any](ctx context.Context, q Querier, objs []*T) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := mappedModel(typeFor[T](), "Intern")
	if err != nil {
		return err
	}
	if q == nil || isNilPointer(q) {
		return errorf(ErrNotIdmap, "Intern[%s]: nil Querier", m.name)
	}
	d, cm, err := resolve(ctx, "Intern", q, m)
	if err != nil {
		return err
	}
	keys := make([]any, len(objs))
	for i, o := range objs {
		if o == nil {
			return errorf(ErrBadDestination, "Intern[%s]: element %d is nil", m.name, i)
		}
		if keys[i], err = m.objKey("Intern", unsafe.Pointer(o)); err != nil {
			// Again, for a message that names the element (no
			// formatting on the path without errors).
			_, err = m.objKey(fmt.Sprintf("Intern[%s]: element %d", m.name, i), unsafe.Pointer(o))
			return err
		}
	}
	epoch := d.cdb.Now()
	all := &plan{fields: make([]*field, len(m.fields))}
	for i := range m.fields {
		all.fields[i] = &m.fields[i]
	}
	for i, o := range objs {
		objs[i] = as[T](cm.Put(m.ctype, &cache.Load{Key: keys[i], Obj: o, Epoch: epoch}, all.apply))
	}
	return nil
}

// objPointer returns the object and model of a pointer to a mapped struct.
func objPointer(obj any) (unsafe.Pointer, *model) {
	rv := reflect.ValueOf(obj)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, nil
	}
	m := modelOf(rv.Type().Elem())
	if !m.mapped || m.err != nil {
		return nil, nil
	}
	return rv.UnsafePointer(), m
}
