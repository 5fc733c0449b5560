package idmap

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// rawBytesType is sql.RawBytes, a []byte that Bind stores as one column
// value, never as a slice of rows, and copies out of the driver's buffer.
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

// parseDst reads a Bind destination: its shape, its value and the type T of
// the rows' objects. A *[]byte or *sql.RawBytes is a *T whose T is one
// column value, not a slice of rows.
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

// plan returns the plan for a result with columns cols: the model's last
// plan when the columns are the same, else a new one, which becomes the
// last. Concurrent Binds may each build and store one; any of them is right.
// It fails when a column has no field, two columns go to one field, or,
// for a mapped type, a key column is missing.
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
		k, err := convertKey(v, p.fields[p.pkCols[0]].keyTyp)
		return k, err == nil, nil
	}
	var ck compositeKey
	for i, c := range p.pkCols {
		v := r.dest[c]
		if v == nil {
			return nil, false, nullKeyError(m, p.fields[c])
		}
		k, err := convertKey(v, p.fields[c].keyTyp)
		if err != nil {
			return nil, false, nil
		}
		ck[i] = k
	}
	return ck, true, nil
}

// nullKeyError is the error for a row whose key field f is NULL: such a row
// has no identity.
func nullKeyError(m *model, f *field) error {
	return errorf(ErrKey, "Bind: NULL in primary-key column %q of %s", f.column, m.name)
}

// bind is Bind without the closing of rs. Nothing goes into a map before
// every row is scanned and the rows have closed without error (scanRows),
// so a Bind that fails changes no map.
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
	st := stages.Get().(*stage)
	defer st.release()
	if m.scalar {
		if len(cols) != 1 {
			return errorf(ErrBadDestination, "Bind: %s takes one column, the result has %d", m.name, len(cols))
		}
		for rs.Next() {
			obj, _ := m.newObj()
			if err := rs.Scan(obj); err != nil {
				return fmt.Errorf("idmap: Bind %s: %w", m.name, err)
			}
			*st.next() = cache.Load{Obj: obj}
			if first {
				break
			}
		}
	} else {
		pl, err := m.plan(cols)
		if err != nil {
			return err
		}
		if err := scanRows(rs, r, m, pl, first, st); err != nil {
			return err
		}
		if m.mapped {
			commit(r, m, pl, st)
		}
	}
	if err := rs.Err(); err != nil {
		return err
	}
	if first && st.n == 0 {
		return sql.ErrNoRows
	}
	store(sh, dv, m, st)
	return nil
}

// stage holds the loads of one Bind, one a row, in chunks of loadChunk: a
// Bind of many rows never copies the rows staged so far into a larger
// slice, as append would, and the map takes the chunks as they are
// (cache.Map.PutChunks). Stages are recycled (stages), with their first
// chunks.
type stage struct {
	chunks [][]cache.Load // filled in order: every one full but the last
	n      int            // loads in all chunks
	spare  [][]cache.Load // empty chunks kept for the next Bind
}

// loadChunk is how many loads a chunk of a stage holds: 512 loads of 48
// bytes fill a small size class exactly (24 KB), below the 32 KB past
// which every allocation is a span of its own.
const loadChunk = 512

// keptChunks is how many chunks a recycled stage keeps: a Bind of many
// rows leaves the rest to the collector.
const keptChunks = 8

var stages = sync.Pool{New: func() any { return new(stage) }}

// next returns the place of the next load, making a chunk when the last
// one is full.
func (s *stage) next() *cache.Load {
	if k := len(s.chunks); k == 0 || len(s.chunks[k-1]) == loadChunk {
		var c []cache.Load
		if j := len(s.spare); j > 0 {
			c, s.spare = s.spare[j-1], s.spare[:j-1]
		} else {
			c = make([]cache.Load, 0, loadChunk)
		}
		s.chunks = append(s.chunks, c)
	}
	c := &s.chunks[len(s.chunks)-1]
	*c = (*c)[:len(*c)+1]
	s.n++
	return &(*c)[len(*c)-1]
}

// first returns the first load; s holds one.
func (s *stage) first() *cache.Load { return &s.chunks[0][0] }

// release clears s, so that the pool holds no object alive, and returns it
// to stages with at most keptChunks chunks.
func (s *stage) release() {
	for i, c := range s.chunks {
		clear(c)
		if len(s.spare) < keptChunks {
			s.spare = append(s.spare, c[:0])
		}
		s.chunks[i] = nil
	}
	s.chunks, s.n = s.chunks[:0], 0
	if cap(s.chunks) > 1<<10 {
		s.chunks = nil // let a huge list go
	}
	stages.Put(s)
}

// scanRows scans the rows of a struct type into out, with plan pl: every
// row, or the first one. For a mapped type, a row whose key the map holds
// fresh (or partial, when pl is partial too) is not scanned: its canonical
// object is taken instead, unless the query refreshes. It closes rs before
// it returns, so that a late error from the driver fails the Bind.
func scanRows(rs *sql.Rows, r *rows, m *model, pl *plan, first bool, out *stage) error {
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
				return err
			}
			if keyOK && cur != nil {
				p, st := cur.Lookup(key)
				if st == cache.Fresh || (st == cache.Partial && pl.partial) {
					*out.next() = cache.Load{Key: key, Obj: p, Canonical: true}
					if first {
						break
					}
					continue
				}
			}
		}
		obj, p := m.newObj()
		if err := scanRow(rs, pl, p, dest, vals, &fieldDest); err != nil {
			return fmt.Errorf("idmap: Bind %s: %w", m.name, err)
		}
		for _, f := range pl.raw {
			f.detachRawBytes(p)
		}
		if m.mapped && !keyOK {
			k, err := m.objKey("Bind", p)
			if err != nil {
				return err
			}
			key = k
		}
		*out.next() = cache.Load{Key: key, Obj: obj, Epoch: r.epoch, Partial: pl.partial, Refresh: r.refresh}
		if first {
			break
		}
	}
	if err := rs.Err(); err != nil {
		return err
	}
	// The rows must have ended cleanly before anything is stored: close them
	// now to learn about a late error.
	return rs.Close()
}

// scanRow scans the current row into the object at p. With pl.direct, dest
// points into vals, and the values are stored by Bind itself where it can
// (convert.go, unsafe_fields.go); otherwise, and for a row with a value it
// cannot store, the fields' addresses (in dest, or in *fieldDest, made
// once) are given to Rows.Scan, which converts.
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
func commit(r *rows, m *model, pl *plan, out *stage) {
	if r.scope == nil {
		noteUnscopedBind(r, m)
	}
	cm := r.m()
	if !r.refresh || cm.Scoped() {
		cm.PutChunks(m.ctype, out.chunks, pl.applyFn)
		return
	}
	// Refreshing in the shared map replaces the entry with each load: one
	// object per key within one result.
	refreshed := make(map[any]any)
	for _, c := range out.chunks {
		for i := range c {
			l := &c[i]
			if l.Canonical {
				continue
			}
			if p, ok := refreshed[l.Key]; ok {
				l.Obj = p
				continue
			}
			l.Obj = cm.Put(m.ctype, l, pl.applyFn)
			refreshed[l.Key] = l.Obj
		}
	}
}

// store sets the destination to the objects of out, by shape. For **T and
// *T, out is not empty: bind returns sql.ErrNoRows before it calls store.
func store(sh shape, dv reflect.Value, m *model, out *stage) {
	switch sh {
	case shapeSliceOfPtr:
		s := reflect.MakeSlice(dv.Type().Elem(), out.n, out.n)
		if s.Type() == reflect.SliceOf(reflect.PointerTo(m.typ)) {
			off := 0
			for _, c := range out.chunks {
				setPointers(s, off, c)
				off += len(c)
			}
		} else {
			i := 0
			for _, c := range out.chunks {
				for _, o := range c {
					s.Index(i).Set(reflect.ValueOf(o.Obj).Convert(s.Type().Elem()))
					i++
				}
			}
		}
		dv.Elem().Set(s)
	case shapePtrPtr:
		dv.Elem().Set(reflect.ValueOf(out.first().Obj).Convert(dv.Type().Elem()))
	case shapeSlice:
		s := reflect.MakeSlice(dv.Type().Elem(), out.n, out.n)
		i := 0
		for _, c := range out.chunks {
			for _, o := range c {
				s.Index(i).Set(reflect.ValueOf(o.Obj).Elem())
				i++
			}
		}
		dv.Elem().Set(s)
	case shapePtr:
		dv.Elem().Set(reflect.ValueOf(out.first().Obj).Elem())
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
