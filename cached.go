package idmap

import (
	"context"
	"database/sql"

	"github.com/go-idmap/idmap/cache"
)

// Cached returns what Get would return without a query: the fresh, complete
// object of type T with key pk in the map of ctx's scope (or q's
// transaction, or the shared map), or nil. q is a *sql.DB, *sql.Tx or
// *sql.Conn of an idmap database; for the last two, idmap learns their map
// from a statement its driver answers without a round trip to the server.
// A q of another database, a bad key or a type that is not mapped give nil.
func Cached[T any](ctx context.Context, q Querier, pk ...any) *T {
	// Get's hit path (see Get): pk does not escape.
	if sdb, ok := q.(*sql.DB); ok && len(pk) == 1 && ctx != nil {
		if m := modelAt(ptrWordOf[T]()); m != nil {
			if p := getHit(m, sdb, ctx, pk[0]); p != nil {
				return (*T)(p)
			}
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := mappedModelOf[T]("Cached")
	if err != nil {
		return nil
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
	if p, st := r.view.Lookup(m.ctype, key); st == cache.Fresh {
		return as[T](p)
	}
	return nil
}
