package idmap

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// Get returns the object of type T whose primary key is pk (one value per
// key column, converted to the key fields' types). A fresh object in the map
// of ctx's scope (or of q's transaction, or the shared map) is returned with
// no round trip to the database; otherwise one SELECT loads it. Absent rows
// give sql.ErrNoRows.
func Get[T any](ctx context.Context, q Querier, pk ...any) (*T, error) {
	// The hit path of a *sql.DB and one integer or string key: the key is
	// read out of pk by value and looked up typed, so that pk does not
	// escape and the caller's interface boxes stay on its stack.
	var m *model
	sdb, ok := q.(*sql.DB)
	if !ok || len(pk) != 1 || ctx == nil {
		goto slow
	}
	{
		// The commonest hit, with no call of its own: an integer key
		// (int64Key) of an integer-keyed model, from a context with no
		// values, in the shared map of the model's last *sql.DB. Anything
		// else goes on to getHit; a stale entry or a miss, to the query.
		w := ptrWordOf[T]()
		if m = firstCaseModels[0].Load(); m == nil || m.ptrWord != w {
			if m = firstCaseModels[1].Load(); m == nil || m.ptrWord != w {
				if m = firstCaseModel(w); m == nil {
					goto slow
				}
			}
		}
		if !isBackground(ctx) {
			goto hit
		}
		l := (*dbLink)(atomic.LoadPointer(&m.link))
		if l == nil || !m.intHit || atomic.LoadPointer(&l.sdb) != unsafe.Pointer(sdb) {
			goto hit
		}
		ik, ok := int64Key(pk[0])
		if !ok {
			goto hit
		}
		p, st := l.cdb.LookupSharedIntPtr(&m.ctypeOf, ik)
		if st != cache.Fresh {
			goto slow
		}
		return (*T)(p), nil
	}
hit:
	if p := getHit(m, sdb, ctx, pk[0]); p != nil {
		return (*T)(p), nil
	}
slow:
	m, err := mappedModelOf[T]("Get")
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return getSlow[T](ctx, q, m, hideArgs(pk))
}

// Get's first case is written for the processor as much as for the reader.
// From 10^5 rows on, each lookup waits on memory, and a loop of lookups
// runs as fast as the processor overlaps those waits. The general path's
// form of this hit (a call to getHit, the model from a table indexed by a
// hash of the type word, nested conditions whose compiled form jumps back
// and forth) ran at 1.6-1.75x a plain map's lookup in 3 of 4 placements of
// the code in the binary; this form, with the model found by comparing
// words (no load waits for a hash), no call of its own and tests that jump
// away only to leave, ran at 1.15-1.35x in each of the placements tried
// (BENCHMARKS.md). A form with only the first of these changes was fast in
// 3 placements of 4 and slow in the fourth.

// firstCaseModels are the models of integer-keyed types in the order Get
// first saw them, up to eight (firstCaseModel); Get compares the first two
// itself, and the types after the eighth go on through modelAt. Model
// replaces a type's entry.
var firstCaseModels [8]atomic.Pointer[model]

// firstCaseModel returns the model whose pointers have type word w, from
// firstCaseModels, or else from modelAt (then it joins firstCaseModels if
// its key is an integer and a place is free), or nil.
//
//go:noinline
func firstCaseModel(w unsafe.Pointer) *model {
	for i := range firstCaseModels {
		if m := firstCaseModels[i].Load(); m != nil && m.ptrWord == w {
			return m
		}
	}
	m := modelAt(w)
	if m != nil && m.intHit {
		for i := range firstCaseModels {
			if firstCaseModels[i].CompareAndSwap(nil, m) {
				// Model may have replaced m since modelAt: then its
				// replaceFirstCaseModel may have run before m came in.
				if cur := modelAt(w); cur != m {
					firstCaseModels[i].CompareAndSwap(m, cur)
				}
				break
			}
		}
	}
	return m
}

// replaceFirstCaseModel puts m in the place of its type's earlier model in
// firstCaseModels, if it has one there (Model).
func replaceFirstCaseModel(m *model) {
	for i := range firstCaseModels {
		if old := firstCaseModels[i].Load(); old != nil && old.ptrWord == m.ptrWord {
			firstCaseModels[i].CompareAndSwap(old, m)
		}
	}
}

// getHit returns the fresh object of key k in the map that ctx selects in
// sdb's database, for mapped type m, or nil (then the general path
// decides): for one integer or string key, looked up with the maps' typed
// lookups (getfast.go), nil for every other kind of key or value. It is
// not generic, and the object comes back as a pointer. The object is a
// *T: every object of a model's maps has the model's pointer type (the
// maps check it when they store one).
func getHit(m *model, sdb *sql.DB, ctx context.Context, k any) unsafe.Pointer {
	if m.typedKey == keyOther {
		return nil
	}
	db := m.linked(sdb)
	if db == nil {
		if db = m.relink(sdb); db == nil {
			return nil
		}
	}
	var scope *cache.Scope // none in a context with no values
	if !isBackground(ctx) {
		var ok bool
		if scope, ok = hitScope(ctx); !ok {
			return nil
		}
	}
	// The map's typed lookup: an int64 key never goes into an interface.
	switch m.typedKey {
	case keyInt, keyIntInt: // the maps keep int keys as int64
		ik, ok := int64Key(k)
		if p := m.namedKey(k); p != nil { // a value of the key field's named type
			ik, ok = *(*int64)(p), true
			if m.typedKey == keyIntInt {
				ik = int64(*(*int)(p))
			}
		}
		if !ok || m.typedKey == keyIntInt && int64(int(ik)) != ik {
			return nil // not an integer, or it overflows int: the general path says so
		}
		if scope != nil {
			return typedHit(scope.LookupInt(db.cdb, m.ctype, ik))
		}
		// The shared map's own pointer lookup: no interface is made.
		p, st := db.cdb.LookupSharedIntPtr(&m.ctypeOf, ik)
		if st != cache.Fresh {
			return nil
		}
		return p
	case keyString:
		sk, ok := k.(string)
		if p := m.namedKey(k); p != nil { // a value of the key field's named type
			sk, ok = *(*string)(p), true
		}
		if !ok {
			return nil
		}
		if scope != nil {
			return typedHit(scope.LookupString(db.cdb, m.ctype, sk))
		}
		return typedHit(db.cdb.LookupSharedString(m.ctype, sk))
	}
	return nil
}

// int64Key returns k as an int64 if it holds an int64, an int or an
// int32: the type word compared, case by case (a type switch of several
// cases compares the type's hash, one load more).
func int64Key(k any) (int64, bool) {
	if x, ok := k.(int64); ok {
		return x, true
	}
	if x, ok := k.(int); ok {
		return int64(x), true
	}
	if x, ok := k.(int32); ok {
		return int64(x), true
	}
	return 0, false
}

// namedKey returns the data word of k, a pointer to its value, if k holds
// a value of the model's key field's named type (model.keyWord: type
// UserID int64), whose value getHit then reads as the basic type; else
// nil.
func (m *model) namedKey(k any) unsafe.Pointer {
	e := (*eface)(unsafe.Pointer(&k))
	if m.keyWord == nil || e.typ != m.keyWord {
		return nil
	}
	return e.data
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
		db, cm = r.db, r.view
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

// resolve finds the database and map that a Querier and ctx select.
func resolve(ctx context.Context, op string, q Querier, m *model) (*database, cache.Map, error) {
	if sdb, ok := q.(*sql.DB); ok {
		db := databaseOf(sdb)
		if db == nil {
			return nil, nil, errorf(ErrNotIdmap, "%s[%s]: the *sql.DB was not opened through idmap", op, m.name)
		}
		return db, db.mapFor(ctx), nil
	}
	r, err := probe(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	return r.db, r.view, nil
}

// isNilPointer reports whether v is a nil pointer: a Querier argument such
// as a nil *sql.Tx, refused with an error rather than a panic in its
// method.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
