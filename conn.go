package idmap

import (
	"context"
	"database/sql/driver"

	"github.com/ngrok/sqlmw"
)

// oneConn is a driver whose only connection is c: it lets sqlmw wrap a
// connection made by a connector.
type oneConn struct{ c driver.Conn }

// Open returns c, whatever the name: sqlmw.Driver(oneConn{c}, …).Open
// wraps c once.
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

// Prepare and Close are driver.Conn's, passed to sqlmw's connection.
// database/sql prepares through PrepareContext, which conn always has.
func (c *conn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }
func (c *conn) Close() error                              { return c.inner.Close() }

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx goes through sqlmw's connection to the interceptor's ConnBeginTx,
// which opens the connection's txState (tx.go).
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.beginTx.BeginTx(ctx, opts)
}

// PrepareContext goes through sqlmw's connection to the interceptor's
// ConnPrepareContext, which answers a probe and wraps the statement.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prepare.PrepareContext(ctx, query)
}

// Ping goes to the base connection through sqlmw, which reports success for a
// base without Pinger.
func (c *conn) Ping(ctx context.Context) error { return c.pinger.Ping(ctx) }

// ResetSession goes to the base connection through sqlmw, which reports
// success for a base without SessionResetter.
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

// CheckNamedValue goes to the base connection through sqlmw; for a base
// without NamedValueChecker, sqlmw applies driver.DefaultParameterConverter.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.checker.CheckNamedValue(nv)
}

// execConn adds ExecerContext to a conn whose base has it (wrap).
type execConn struct{ c *conn }

// ExecContext goes through sqlmw's connection to the interceptor's
// ConnExecContext.
func (e execConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return e.c.execer.ExecContext(ctx, query, args)
}

// queryConn adds QueryerContext to a conn whose base has it (wrap).
type queryConn struct{ c *conn }

// QueryContext goes through sqlmw's connection to the interceptor's
// ConnQueryContext.
func (q queryConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return q.c.queryer.QueryContext(ctx, query, args)
}

// wrap puts a base connection behind sqlmw with an interceptor of its own,
// which keeps the connection's state (its transaction), and behind conn,
// which lets users reach the base connection.
func (db *database) wrap(bc driver.Conn) driver.Conn {
	st := &connState{db: db, base: bc}
	attachHooks(st)
	_, st.hasBeginTx = bc.(driver.ConnBeginTx)
	_, execCtx := bc.(driver.ExecerContext)
	//lint:ignore SA1019 a base driver may have only the old interfaces: idmap must pass them on as they are
	_, exec := bc.(driver.Execer)
	_, queryCtx := bc.(driver.QueryerContext)
	//lint:ignore SA1019 as above
	_, query := bc.(driver.Queryer)
	wc, _ := sqlmw.Driver(oneConn{bc}, &interceptor{c: st}).Open("")
	c := newConn(wc, st)
	// sqlmw's connection always claims ExecerContext and QueryerContext.
	// database/sql converts arguments at the connection level for a
	// connection that has them, and at the statement level (with the
	// statement's ColumnConverter) for one that has not: claim them only
	// where the base has them (or their context-less forms).
	switch e, q := execCtx || exec, queryCtx || query; {
	case e && q:
		return struct {
			*conn
			execConn
			queryConn
		}{c, execConn{c}, queryConn{c}}
	case e:
		return struct {
			*conn
			execConn
		}{c, execConn{c}}
	case q:
		return struct {
			*conn
			queryConn
		}{c, queryConn{c}}
	}
	return c
}
