package idmap

import (
	"context"
	"database/sql"
	"reflect"
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

// Querier runs queries: *sql.DB, *sql.Tx and *sql.Conn are Queriers.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

var (
	_ Querier = (*sql.DB)(nil)
	_ Querier = (*sql.Tx)(nil)
	_ Querier = (*sql.Conn)(nil)
)
