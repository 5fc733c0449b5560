package idmap

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"sync"

	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/classify"
)

// rows are the driver rows of a query through idmap: the base driver's rows,
// with what Bind needs to know of the query.
//
// database/sql calls the driver rows' methods under the connection's lock,
// the Close made by the goroutine that watches the query's context
// included: the fields need no lock of their own.
type rows struct {
	base    driver.Rows
	cols    []string   // this rows' own slice, registered while open
	colsBuf [10]string // backs cols for up to 8 columns and the tag: no allocation
	bufUsed bool       // colsBuf backs a slice handed out (a later result set allocates)

	conn    *connState
	db      *database
	scope   *cache.Scope // where Bind puts what it loads: the transaction's or the context's scope; nil for the shared map
	epoch   uint64       // the database's clock when the query was sent
	refresh bool         // loads overwrite their canonical objects
	eff     *effects     // what the statement wrote, expired again at Close; nil for a read
	publish bool         // publish eff on the bus at Close (a write outside a transaction)
	writing bool         // a write outside a transaction: it commits when the rows close (sqliteHooks.writing)
	// txScope: scope belongs to the unit of work and the rows came from
	// inside a transaction, which may still roll back: what the
	// transaction does not find may exist again after it.
	txScope bool

	// dest is the slice database/sql passed to the last Next: the raw
	// values of the current row, read by Bind (on the goroutine that calls
	// Next) to look the row up before it is scanned.
	dest []driver.Value
}

var (
	_ driver.Rows                           = (*rows)(nil)
	_ sqlmw.RowsUnwrapper                   = (*rows)(nil)
	_ driver.RowsNextResultSet              = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
)

// newRows wraps base rows. sqlmw exposes, of the optional methods below,
// only those that the base rows have (it looks through Unwrap).
func (c *connState) newRows(ctx context.Context, base driver.Rows, st *classify.Statement, eff *effects, epoch uint64) *rows {
	cs := stateFrom(ctx)
	r := &rows{
		base:    base,
		conn:    c,
		db:      c.db,
		epoch:   epoch,
		eff:     eff,
		refresh: cs.refresh || (st != nil && st.Locking),
	}
	r.scope, r.txScope = c.loadScope(cs)
	r.writing = eff != nil && c.tx == nil
	c.hooksRowsOpened(r.writing)
	return r
}

// loadScope returns the scope that a query on c with the context state cs
// loads into (nil for the shared map): the open transaction's, else the
// context's. txScope reports the unit of work's scope seen from inside a
// transaction (rows.txScope). A context's scope is noted in the database
// (sawScope).
func (c *connState) loadScope(cs ctxState) (scope *cache.Scope, txScope bool) {
	if cs.scope != nil && !c.db.sawScope.Load() {
		c.db.sawScope.Store(true)
	}
	if t := c.tx; t != nil {
		return t.scope, !t.own
	}
	return cs.scope, false
}

// m returns the map that Bind puts the rows' objects in.
func (r *rows) m() cache.Map {
	if r.scope != nil {
		return r.scope.In(r.db.cdb)
	}
	return r.db.cdb.Shared()
}

// register makes the rows' column slice, with room past its length for the
// tag that names r (tagColumns), in colsBuf when it fits and colsBuf backs
// no earlier slice: a slice handed out is never reused, since its holder may
// still read it.
func (r *rows) register() {
	bc := r.base.Columns()
	if len(bc)+2 <= len(r.colsBuf) && !r.bufUsed {
		r.cols = r.colsBuf[: len(bc) : len(bc)+2]
		r.bufUsed = true
		copy(r.cols, bc)
	} else {
		r.cols = append(make([]string, 0, len(bc)+2), bc...)
	}
	tagColumns(r.cols, r)
}

// Unwrap returns the base rows, for sqlmw, which exposes the optional
// methods below only when the base rows have them: the type assertions in
// those methods cannot fail.
func (r *rows) Unwrap() driver.Rows { return r.base }

// Columns makes the rows' tagged column slice on first use (database/sql
// asks for it on the first Next, and Bind through (*sql.Rows).Columns).
//
// A caller may append to the slice it got, in the spare capacity that holds
// the tag: a slice whose tag is gone is not made whole again, which would
// change the caller's elements, but replaced by a new one.
func (r *rows) Columns() []string {
	if r.cols == nil || taggedRows(r.cols) != r {
		r.register()
	}
	return r.cols
}

// Next keeps dest for Bind, which reads the row's raw values before
// database/sql scans them.
func (r *rows) Next(dest []driver.Value) error {
	r.dest = dest
	return r.base.Next(dest)
}

// Close closes the base rows, then does what the query left for when the
// connection is free again: ask the server for the session state
// (sessionPending), expire a write's effects again and publish them, apply
// what SQLite's hooks reported. The base rows' error is returned.
func (r *rows) Close() error {
	err := r.base.Close()
	if r.conn != nil && r.conn.sessionPending {
		r.conn.sessionPending = false
		r.conn.sessionUnknown(context.Background())
	}
	if r.conn != nil {
		r.conn.hooksRowsClosing(r.eff, r.writing)
	}
	if r.eff != nil {
		// A write through the query path (INSERT … RETURNING) may commit
		// only when its rows are done: expire again, with what SQLite
		// reported while the rows were read (hooksRowsClosing).
		r.db.expire(r.eff)
		if r.publish {
			r.publish = false
			r.conn.publishNow(context.Background(), []*effects{r.eff}, false)
		}
	}
	if r.conn != nil {
		r.conn.hooksIdle(context.Background(), false)
	}
	return err
}

// HasNextResultSet is the base rows' (see Unwrap).
func (r *rows) HasNextResultSet() bool {
	return r.base.(driver.RowsNextResultSet).HasNextResultSet()
}

// NextResultSet moves the base rows to their next result set (see Unwrap).
func (r *rows) NextResultSet() error {
	if err := r.base.(driver.RowsNextResultSet).NextResultSet(); err != nil {
		return err
	}
	r.cols = nil // made again, for the new columns, by the next Columns
	return nil
}

// ColumnTypeDatabaseTypeName is the base rows' (see Unwrap).
func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	return r.base.(driver.RowsColumnTypeDatabaseTypeName).ColumnTypeDatabaseTypeName(i)
}

// ColumnTypeLength is the base rows' (see Unwrap).
func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	return r.base.(driver.RowsColumnTypeLength).ColumnTypeLength(i)
}

// ColumnTypeNullable is the base rows' (see Unwrap).
func (r *rows) ColumnTypeNullable(i int) (bool, bool) {
	return r.base.(driver.RowsColumnTypeNullable).ColumnTypeNullable(i)
}

// ColumnTypePrecisionScale is the base rows' (see Unwrap).
func (r *rows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.base.(driver.RowsColumnTypePrecisionScale).ColumnTypePrecisionScale(i)
}

// ColumnTypeScanType is the base rows' (see Unwrap).
func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	return r.base.(driver.RowsColumnTypeScanType).ColumnTypeScanType(i)
}

// rowsOf returns the idmap rows behind a *sql.Rows, found through the tag
// that its Columns slice carries (unsafe_columns.go).
func rowsOf(rs *sql.Rows) (*rows, []string, error) {
	cols, err := rs.Columns()
	if err != nil {
		return nil, nil, err
	}
	if r := taggedRows(cols); r != nil {
		return r, cols, nil
	}
	return nil, cols, errorf(ErrNotIdmap, "Bind: the rows were not produced by a database opened through idmap (sql.Open(\"idmap+<driver>\", dsn))")
}

// probed is what a probe learns of the connection of a *sql.Tx, *sql.Conn
// or other Querier: its database, the map that a query run there now loads
// into, and whether that map is the unit of work's scope seen from inside a
// transaction (rows.txScope).
type probed struct {
	db      *database
	view    cache.Map
	txScope bool
}

// probe learns the database and map of a *sql.Tx, *sql.Conn or other
// Querier by sending it probeSQL, which the idmap driver answers without a
// round trip to the server. Through ExecContext (a *sql.Tx or *sql.Conn)
// the answer comes back in the context (the interceptor answers the Exec,
// or the Prepare that database/sql sends first when the base driver has no
// ExecerContext), which costs database/sql and sqlmw 4 allocations,
// against 12 for a query (its rows, the goroutine and context that watch a
// transaction's rows, sqlmw's wrappers); any other Querier, or one that
// did not reach idmap's driver, is asked through QueryContext.
func probe(ctx context.Context, q Querier) (probed, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	// Only database/sql's own types get the pooled context: they do not
	// keep it past the call, which a caller's wrapper might (a context
	// kept after it went back to the pool would answer for another probe).
	var e execQuerier
	switch x := q.(type) {
	case *sql.Tx:
		e = x
	case *sql.Conn:
		e = x
	}
	if e != nil {
		pc := probeCtxs.Get().(*probeCtx)
		pc.Context = ctx
		_, err := e.ExecContext(pc, probeSQL)
		p, answered := pc.ans, pc.answered
		*pc = probeCtx{}
		probeCtxs.Put(pc)
		if answered {
			return p, nil
		}
		if err != nil && ctx.Err() != nil {
			return probed{}, err
		}
		// Not answered: not an idmap database (or a wrapper that hides
		// the context). The query says which, as it always did.
	}
	rs, err := q.QueryContext(ctx, probeSQL)
	if err != nil {
		return probed{}, err
	}
	defer rs.Close()
	r, _, err := rowsOf(rs)
	if err != nil {
		return probed{}, errorf(ErrNotIdmap, "the Querier does not run on a database opened through idmap")
	}
	return probed{db: r.db, view: r.m(), txScope: r.txScope}, nil
}

// execQuerier is a Querier that also executes (*sql.Tx, *sql.Conn).
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// probeCtx is the context of an Exec probe: the interceptor that answers
// probeSQL finds it among ctx's values and writes the answer in it, on the
// goroutine that called ExecContext. Pooled: a probe allocates none.
type probeCtx struct {
	context.Context
	ans      probed
	answered bool
}

// probeCtxKey is the key under which a probeCtx is found among a context's
// values.
type probeCtxKey struct{}

// Value returns p for probeCtxKey, so that the interceptor finds p through
// any context derived from it.
func (p *probeCtx) Value(key any) any {
	if _, ok := key.(probeCtxKey); ok {
		return p
	}
	return p.Context.Value(key)
}

var probeCtxs = sync.Pool{New: func() any { return new(probeCtx) }}

// answerProbe answers an Exec of probeSQL on c, if it comes from probe.
func (c *connState) answerProbe(ctx context.Context) {
	pc, ok := ctx.Value(probeCtxKey{}).(*probeCtx)
	if !ok {
		return
	}
	s, txScope := c.loadScope(stateFrom(ctx))
	p := probed{db: c.db, txScope: txScope}
	switch t := c.tx; {
	case t != nil:
		// The transaction's view of its scope, made once: the probes of
		// a transaction's Get calls allocate none.
		if t.view == nil {
			t.view = t.scope.In(c.db.cdb)
		}
		p.view = t.view
	case s != nil:
		p.view = s.In(c.db.cdb)
	default:
		p.view = c.db.cdb.Shared()
	}
	pc.ans, pc.answered = p, true
}
