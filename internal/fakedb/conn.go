package fakedb

//lint:file-ignore SA1019 the fake driver implements the interfaces deprecated since Go 1.8/1.9 on purpose: idmap must work over drivers that have only those

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
)

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = connBeginTx{}
	_ driver.ConnPrepareContext = connPrepareContext{}
	_ driver.ExecerContext      = connExecerContext{}
	_ driver.Execer             = connExecer{}
	_ driver.QueryerContext     = connQueryerContext{}
	_ driver.Queryer            = connQueryer{}
	_ driver.Pinger             = connPinger{}
	_ driver.SessionResetter    = connSessionResetter{}
	_ driver.Validator          = connValidator{}
	_ driver.NamedValueChecker  = connNamedValueChecker{}
)

// conn is the base driver.Conn value. pickConn embeds it, with one small
// type per optional interface, in the value handed to database/sql.
//
// Apart from bad, its fields are used as database/sql uses a connection:
// by one goroutine at a time.
type conn struct {
	d   *Driver
	id  int
	dsn string

	bad    atomic.Bool // the connection returned driver.ErrBadConn (sticky mode only); also set from rows
	inTx   bool        // a transaction is open
	closed bool        // Close was called
}

// call records q, then answers it: with driver.ErrBadConn if the connection
// is bad, else with the Handler.
func (c *conn) call(ctx context.Context, q *Query) (*Result, error) {
	c.note(q)
	if c.closed {
		return nil, fmt.Errorf("fakedb: conn %d: %v after Close", c.id, q.Kind)
	}
	if c.bad.Load() {
		return nil, driver.ErrBadConn
	}
	res, err := c.d.handle(ctx, q)
	c.check(err)
	return res, err
}

// note fills in the connection's part of q and records it.
func (c *conn) note(q *Query) {
	q.ConnID, q.DSN, q.InTx = c.id, c.dsn, c.inTx
	c.d.record(q)
}

// check marks the connection bad if err is driver.ErrBadConn and bad
// connections are sticky.
func (c *conn) check(err error) {
	if err != nil && !c.d.cfg.badConnLenient && errors.Is(err, driver.ErrBadConn) {
		c.bad.Store(true)
	}
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.prepare(context.Background(), query)
}

func (c *conn) Close() error {
	if c.closed {
		return fmt.Errorf("fakedb: conn %d closed twice", c.id)
	}
	c.closed = true
	c.d.count(func(s *Stats) { s.ConnsClosed++; s.OpenConns-- })
	return nil
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.begin(context.Background(), driver.TxOptions{})
}

func (c *conn) prepare(ctx context.Context, query string) (driver.Stmt, error) {
	if _, err := c.call(ctx, &Query{Kind: KindPrepare, SQL: query}); err != nil {
		return nil, err
	}
	s := &stmt{c: c, query: query, numInput: -1}
	if f := c.d.cfg.numInput; f != nil {
		s.numInput = f(query)
	}
	c.d.count(func(s *Stats) { s.OpenStmts++ })
	return pickStmt(s, c.d.cfg.caps), nil
}

func (c *conn) begin(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if _, err := c.call(ctx, &Query{Kind: KindBegin, TxOptions: opts}); err != nil {
		return nil, err
	}
	c.inTx = true
	c.d.count(func(s *Stats) { s.OpenTxs++ })
	return &tx{c: c}, nil
}

func (c *conn) query(ctx context.Context, query string, args []driver.NamedValue, viaStmt bool) (driver.Rows, error) {
	res, err := c.call(ctx, &Query{Kind: KindQuery, SQL: query, Args: args, Stmt: viaStmt})
	if err != nil {
		return nil, err
	}
	return c.newRows(res), nil
}

func (c *conn) exec(ctx context.Context, query string, args []driver.NamedValue, viaStmt bool) (driver.Result, error) {
	res, err := c.call(ctx, &Query{Kind: KindExec, SQL: query, Args: args, Stmt: viaStmt})
	if err != nil {
		return nil, err
	}
	if res == nil {
		return execResult{}, nil
	}
	return execResult{lastInsertID: res.LastInsertID, rowsAffected: res.RowsAffected}, nil
}

// checkNamedValue records nv and runs the configured check.
func (c *conn) checkNamedValue(nv *driver.NamedValue, query string, viaStmt bool) error {
	c.note(&Query{Kind: KindCheckNamedValue, SQL: query, Args: []driver.NamedValue{*nv}, Stmt: viaStmt})
	if f := c.d.cfg.checkNamedValue; f != nil {
		return f(nv)
	}
	return driver.ErrSkip
}

// namedValues turns the arguments of the methods without a context into
// what the context methods receive.
func namedValues(args []driver.Value) []driver.NamedValue {
	if args == nil {
		return nil
	}
	nvs := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nvs[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nvs
}

// execResult is the driver.Result of an exec.
type execResult struct{ lastInsertID, rowsAffected int64 }

func (r execResult) LastInsertId() (int64, error) { return r.lastInsertID, nil }
func (r execResult) RowsAffected() (int64, error) { return r.rowsAffected, nil }

// connBeginTx carries driver.ConnBeginTx (CapConnBeginTx).
type connBeginTx struct{ c *conn }

func (x connBeginTx) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return x.c.begin(ctx, opts)
}

// connPrepareContext carries driver.ConnPrepareContext (CapConnPrepareContext).
type connPrepareContext struct{ c *conn }

func (x connPrepareContext) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return x.c.prepare(ctx, query)
}

// connExecerContext carries driver.ExecerContext (CapExecerContext).
type connExecerContext struct{ c *conn }

func (x connExecerContext) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return x.c.exec(ctx, query, args, false)
}

// connExecer carries driver.Execer (CapExecer).
type connExecer struct{ c *conn }

func (x connExecer) Exec(query string, args []driver.Value) (driver.Result, error) {
	return x.c.exec(context.Background(), query, namedValues(args), false)
}

// connQueryerContext carries driver.QueryerContext (CapQueryerContext).
type connQueryerContext struct{ c *conn }

func (x connQueryerContext) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return x.c.query(ctx, query, args, false)
}

// connQueryer carries driver.Queryer (CapQueryer).
type connQueryer struct{ c *conn }

func (x connQueryer) Query(query string, args []driver.Value) (driver.Rows, error) {
	return x.c.query(context.Background(), query, namedValues(args), false)
}

// connPinger carries driver.Pinger (CapPinger).
type connPinger struct{ c *conn }

func (x connPinger) Ping(ctx context.Context) error {
	_, err := x.c.call(ctx, &Query{Kind: KindPing})
	return err
}

// connSessionResetter carries driver.SessionResetter (CapSessionResetter).
type connSessionResetter struct{ c *conn }

func (x connSessionResetter) ResetSession(ctx context.Context) error {
	c := x.c
	c.note(&Query{Kind: KindResetSession})
	if c.bad.Load() {
		return driver.ErrBadConn
	}
	if f := c.d.cfg.resetSession; f != nil {
		err := f(ctx, c.id)
		c.check(err)
		return err
	}
	return nil
}

// connValidator carries driver.Validator (CapValidator).
type connValidator struct{ c *conn }

func (x connValidator) IsValid() bool {
	c := x.c
	c.note(&Query{Kind: KindIsValid})
	if c.bad.Load() {
		return false
	}
	if f := c.d.cfg.isValid; f != nil {
		return f(c.id)
	}
	return true
}

// connNamedValueChecker carries driver.NamedValueChecker
// (CapConnNamedValueChecker).
type connNamedValueChecker struct{ c *conn }

func (x connNamedValueChecker) CheckNamedValue(nv *driver.NamedValue) error {
	return x.c.checkNamedValue(nv, "", false)
}
