package idmap

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/classify"
	"github.com/go-idmap/idmap/signals"
)

// oneConn is a driver whose only connection is c: it lets sqlmw wrap a
// connection made by a connector.
type oneConn struct{ c driver.Conn }

func (o oneConn) Open(string) (driver.Conn, error) { return o.c, nil }

// connState is what idmap knows of one connection. database/sql uses a
// connection from one goroutine at a time (under its own lock), so the
// fields need no lock of their own.
type connState struct {
	db         *database
	base       driver.Conn
	hasBeginTx bool     // base has ConnBeginTx
	tx         *txState // the open transaction, or nil
	// autocommitOff: MySQL's SET autocommit = 0 was sent. The server then
	// begins a transaction whenever one ends; so does idmap (chain).
	autocommitOff bool
	// curDB: the connection's current database (MySQL), which unqualified
	// names resolve to, when curKnown; asked of the server before the first
	// write, and again after a USE.
	curDB    string
	curKnown bool
	// sessionPending: a statement whose effect on autocommit is unknown
	// came through the query path; its rows ask the server when they close.
	sessionPending bool
	// hooks: SQLite's hooks on base (sqlite_hooks.go), or nil.
	hooks *sqliteHooks
}

// txState is an open transaction: begun with BeginTx, or with BEGIN sent as
// SQL (raw).
type txState struct {
	epoch   uint64       // the database's clock when it began
	scope   *cache.Scope // where its loads go
	view    cache.Map    // scope.In(the database), made by the first probe that needs it
	own     bool         // scope made for the transaction, ended with it
	raw     bool         // begun by SQL text, not by BeginTx
	pending []*effects   // what it wrote: expired at once, and again when it ends
	tooMany bool         // pending overflowed: expire the whole database at the end
}

// maxPending bounds what a transaction remembers of its writes; past it,
// its end expires the whole database.
const maxPending = 1024

func (c *connState) begin(ctx context.Context, raw bool) {
	s := scopeFrom(ctx)
	// Tick: what the transaction loads has an epoch of its own, so that its
	// end can tell it from what its scope held before.
	t := &txState{scope: s, raw: raw, epoch: c.db.cdb.Tick()}
	if s == nil {
		t.scope, t.own = cache.NewScope(), true
	}
	c.tx = t
}

// end closes the open transaction. What it wrote was expired when it was
// written; it is expired again now that it is committed (or rolled back),
// since other maps may have loaded the old rows in between. What it loaded
// into a scope that outlives it is expired too.
func (c *connState) end(rollback bool) {
	t := c.tx
	if t == nil {
		return
	}
	c.tx = nil
	t.republish(c.db)
	if !t.own {
		// What the transaction loaded into the unit of work's scope may be
		// what only it saw: its own writes, rolled back, or the snapshot of
		// a REPEATABLE READ transaction, older than writes that others
		// committed meanwhile. It is reloaded at the next read.
		t.scope.ExpireLoadedSince(c.db.cdb, t.epoch)
		return
	}
	if !c.db.noFlush[signals.TxEnd] {
		endScope(t.scope, signals.TxEnd, c.db.name)
		return
	}
	if rollback {
		t.scope.End()
		return
	}
	shared := c.db.cdb.Shared()
	for _, it := range t.scope.Drain(c.db.cdb) {
		shared.Put(it.Type, &cache.Load{Key: it.Key, Obj: it.Obj, Epoch: min(it.Epoch, t.epoch), Partial: it.Partial}, nil)
	}
}

// republish expires again everything the transaction wrote.
func (t *txState) republish(db *database) {
	if t.tooMany {
		db.cdb.ExpireAll()
		return
	}
	for _, e := range t.pending {
		db.expire(e)
	}
}

// record keeps a write of the open transaction for its end.
func (t *txState) record(e *effects) {
	if t.tooMany {
		return
	}
	if len(t.pending) >= maxPending {
		t.pending, t.tooMany = nil, true
		return
	}
	t.pending = append(t.pending, e)
}

// conn is the connection database/sql sees: sqlmw's, with a way back to the
// base driver's connection for sql.Conn.Raw. It claims what sqlmw's
// connection claims, but ExecerContext and QueryerContext only where the
// base has them (execConn, queryConn); where the base lacks an interface,
// sqlmw's fallback does what database/sql does without it (the test
// TestDriverBehavesAsBase compares the two over every variant).
type conn struct {
	inner driver.Conn // sqlmw's connection
	st    *connState

	// inner's optional interfaces, asserted once: database/sql calls some
	// of them on every query (CheckNamedValue per argument, ResetSession
	// and IsValid as the connection goes back to the pool).
	beginTx  driver.ConnBeginTx
	prepare  driver.ConnPrepareContext
	pinger   driver.Pinger
	resetter driver.SessionResetter
	valid    driver.Validator
	checker  driver.NamedValueChecker
	execer   driver.ExecerContext
	queryer  driver.QueryerContext
}

// newConn returns the connection database/sql sees for sqlmw's connection
// inner, which has every interface that conn claims.
func newConn(inner driver.Conn, st *connState) *conn {
	c := &conn{inner: inner, st: st}
	c.beginTx, _ = inner.(driver.ConnBeginTx)
	c.prepare, _ = inner.(driver.ConnPrepareContext)
	c.pinger, _ = inner.(driver.Pinger)
	c.resetter, _ = inner.(driver.SessionResetter)
	c.valid, _ = inner.(driver.Validator)
	c.checker, _ = inner.(driver.NamedValueChecker)
	c.execer, _ = inner.(driver.ExecerContext)
	c.queryer, _ = inner.(driver.QueryerContext)
	return c
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.ExecerContext      = execConn{}
	_ driver.QueryerContext     = queryConn{}
)

// Unwrap returns the base driver's connection. Reach it with sql.Conn.Raw:
//
//	err := c.Raw(func(dc any) error {
//		pc := dc.(interface{ Unwrap() driver.Conn }).Unwrap().(*stdlib.Conn)
//		…
//	})
//
// Statements sent on it directly bypass idmap: it cannot expire what they
// write (SQLite's hooks, which idmap registers on it, ignore them).
func (c *conn) Unwrap() driver.Conn { return c.st.base }

func (c *conn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }
func (c *conn) Close() error                              { return c.inner.Close() }

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.beginTx.BeginTx(ctx, opts)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prepare.PrepareContext(ctx, query)
}

func (c *conn) Ping(ctx context.Context) error { return c.pinger.Ping(ctx) }

func (c *conn) ResetSession(ctx context.Context) error {
	return c.resetter.ResetSession(ctx)
}

// IsValid is called by database/sql as the connection goes back to the
// pool: what SQLite's hooks reported of a statement that failed (rows that
// SQLite kept) is applied now, not at the connection's next statement.
func (c *conn) IsValid() bool {
	c.st.hooksIdle(context.Background(), true)
	return c.valid.IsValid()
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.checker.CheckNamedValue(nv)
}

type execConn struct{ c *conn }

func (e execConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return e.c.execer.ExecContext(ctx, query, args)
}

type queryConn struct{ c *conn }

func (q queryConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return q.c.queryer.QueryContext(ctx, query, args)
}

// interceptor is sqlmw's hook into one connection.
type interceptor struct {
	sqlmw.NullInterceptor
	c *connState
}

func (i *interceptor) ConnBeginTx(ctx context.Context, conn driver.ConnBeginTx, opts driver.TxOptions) (context.Context, driver.Tx, error) {
	var tx driver.Tx
	var err error
	if i.c.hasBeginTx {
		tx, err = conn.BeginTx(ctx, opts)
	} else {
		tx, err = beginWithoutContext(ctx, i.c.base, opts)
	}
	if err != nil {
		return ctx, nil, err
	}
	if t := i.c.tx; t != nil && t.raw {
		// MySQL commits the transaction open (BEGIN or autocommit off)
		// before it starts another.
		i.c.end(false)
		i.c.publishNow(ctx, t.pending, t.tooMany)
	}
	i.c.begin(ctx, false)
	return ctx, tx, nil
}

func (i *interceptor) TxCommit(ctx context.Context, tx driver.Tx) error {
	t := i.c.tx
	// A ConnPublisher's messages go in the transaction itself: sent if and
	// only if it commits.
	early, perr := i.c.publishBeforeCommit(ctx)
	if perr != nil {
		rerr := tx.Rollback()
		i.c.end(true)
		return errors.Join(fmt.Errorf("idmap: publishing invalidations before COMMIT failed, the transaction was rolled back: %w", perr), rerr)
	}
	err := tx.Commit()
	// Whether or not the commit succeeded, the transaction is over; a
	// failed commit rolled back, and the end expires as a rollback does.
	i.c.end(err != nil)
	if t != nil && !early && (err == nil || uncertain(err)) {
		// Committed, or perhaps (the connection broke): publish.
		i.c.publishNow(ctx, t.pending, t.tooMany)
	} else if t != nil && early && err == nil {
		i.c.syncSources(ctx, t.pending, t.tooMany)
	}
	i.c.chain()
	return err
}

func (i *interceptor) TxRollback(ctx context.Context, tx driver.Tx) error {
	err := tx.Rollback()
	i.c.end(true)
	i.c.chain()
	return err
}

func (i *interceptor) ConnPrepareContext(ctx context.Context, conn driver.ConnPrepareContext, query string) (context.Context, driver.Stmt, error) {
	if query == probeSQL {
		i.c.answerProbe(ctx) // an Exec probe on a base without ExecerContext comes through Prepare
		return ctx, probeStmt{}, nil
	}
	st, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return ctx, nil, err
	}
	return ctx, &stmt{base: st, conn: i.c}, nil
}

func (i *interceptor) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	if query == probeSQL {
		i.c.answerProbe(ctx)
		return driver.RowsAffected(0), nil
	}
	cs := i.c.before(ctx, query)
	res, err := conn.ExecContext(ctx, query, args)
	if err == nil || uncertain(err) {
		i.c.after(ctx, cs, args, false)
	}
	return res, err
}

func (i *interceptor) StmtExecContext(ctx context.Context, stmt driver.StmtExecContext, query string, args []driver.NamedValue) (driver.Result, error) {
	cs := i.c.before(ctx, query)
	res, err := stmt.ExecContext(ctx, args)
	if err == nil || uncertain(err) {
		i.c.after(ctx, cs, args, false)
	}
	return res, err
}

func (i *interceptor) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	if query == probeSQL {
		return ctx, i.c.newRows(ctx, probeRows{}, nil, nil, 0), nil
	}
	cs := i.c.before(ctx, query)
	epoch := i.c.db.cdb.Now() // before the query is sent
	r, err := conn.QueryContext(ctx, query, args)
	return ctx, i.c.queried(ctx, cs, args, r, err, epoch), err
}

func (i *interceptor) StmtQueryContext(ctx context.Context, stmt driver.StmtQueryContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	if query == probeSQL {
		return ctx, i.c.newRows(ctx, probeRows{}, nil, nil, 0), nil
	}
	cs := i.c.before(ctx, query)
	epoch := i.c.db.cdb.Now() // before the query is sent
	r, err := stmt.QueryContext(ctx, args)
	return ctx, i.c.queried(ctx, cs, args, r, err, epoch), err
}

// queried follows a query that was sent: its writes, if any, and its rows.
// A write through the query path (INSERT … RETURNING) has happened when the
// first row is ready; it may commit only when the rows are done, so the
// rows expire it again when they close.
func (c *connState) queried(ctx context.Context, cs *classify.Statement, args []driver.NamedValue, r driver.Rows, err error, epoch uint64) driver.Rows {
	if err != nil {
		if uncertain(err) {
			c.after(ctx, cs, args, false) // no rows: publish now
		}
		return nil
	}
	autocommit := c.tx == nil
	eff := c.after(ctx, cs, args, true)
	rs := c.newRows(ctx, r, cs, eff, epoch)
	rs.publish = autocommit && eff != nil && (c.db.bus != nil || len(c.db.syncers) > 0)
	return rs
}

// probeSQL is a statement that idmap's interceptor answers itself, without
// sending it to the server: Get sends it through a *sql.Tx or *sql.Conn to
// learn their database and map.
const probeSQL = "SELECT 1 /* idmap: probe, answered by the idmap driver */"

type probeRows struct{}

func (probeRows) Columns() []string         { return []string{"idmap_probe"} }
func (probeRows) Close() error              { return nil }
func (probeRows) Next([]driver.Value) error { return io.EOF }

type probeStmt struct{}

func (probeStmt) Close() error                               { return nil }
func (probeStmt) NumInput() int                              { return 0 }
func (probeStmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(0), nil }
func (probeStmt) Query([]driver.Value) (driver.Rows, error)  { return probeRows{}, nil }
func (probeStmt) QueryContext(context.Context, []driver.NamedValue) (driver.Rows, error) {
	return probeRows{}, nil
}
