package fakedb

//lint:file-ignore SA1019 the fake driver implements the interfaces deprecated since Go 1.8/1.9 on purpose: idmap must work over drivers that have only those

import (
	"context"
	"database/sql/driver"
	"fmt"
)

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = stmtExecContext{}
	_ driver.StmtQueryContext  = stmtQueryContext{}
	_ driver.NamedValueChecker = stmtNamedValueChecker{}
	_ driver.ColumnConverter   = stmtColumnConverter{}
)

// stmt is the base driver.Stmt value. Its Query and Exec reach the Handler
// with Stmt set in the Query.
type stmt struct {
	c        *conn
	query    string
	numInput int  // from WithNumInput; -1 by default
	closed   bool // Close was called
}

func (s *stmt) Close() error {
	if s.closed {
		return fmt.Errorf("fakedb: conn %d: statement %q closed twice", s.c.id, s.query)
	}
	s.closed = true
	s.c.d.count(func(st *Stats) { st.OpenStmts-- })
	return nil
}

func (s *stmt) NumInput() int { return s.numInput }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.exec(context.Background(), namedValues(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.queryRows(context.Background(), namedValues(args))
}

func (s *stmt) exec(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.closed {
		return nil, fmt.Errorf("fakedb: conn %d: statement %q used after Close", s.c.id, s.query)
	}
	return s.c.exec(ctx, s.query, args, true)
}

func (s *stmt) queryRows(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.closed {
		return nil, fmt.Errorf("fakedb: conn %d: statement %q used after Close", s.c.id, s.query)
	}
	return s.c.query(ctx, s.query, args, true)
}

// stmtExecContext carries driver.StmtExecContext (CapStmtExecContext).
type stmtExecContext struct{ s *stmt }

func (x stmtExecContext) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return x.s.exec(ctx, args)
}

// stmtQueryContext carries driver.StmtQueryContext (CapStmtQueryContext).
type stmtQueryContext struct{ s *stmt }

func (x stmtQueryContext) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return x.s.queryRows(ctx, args)
}

// stmtNamedValueChecker carries driver.NamedValueChecker
// (CapStmtNamedValueChecker).
type stmtNamedValueChecker struct{ s *stmt }

func (x stmtNamedValueChecker) CheckNamedValue(nv *driver.NamedValue) error {
	return x.s.c.checkNamedValue(nv, x.s.query, true)
}

// stmtColumnConverter carries driver.ColumnConverter (CapColumnConverter).
type stmtColumnConverter struct{ s *stmt }

func (x stmtColumnConverter) ColumnConverter(idx int) driver.ValueConverter {
	vc := driver.ValueConverter(driver.DefaultParameterConverter)
	if f := x.s.c.d.cfg.columnConverter; f != nil {
		vc = f(idx)
	}
	return loggingConverter{s: x.s, idx: idx, vc: vc}
}

// loggingConverter records each value it converts (KindConvertValue), then
// converts it with vc.
type loggingConverter struct {
	s   *stmt
	idx int
	vc  driver.ValueConverter
}

func (lc loggingConverter) ConvertValue(v any) (driver.Value, error) {
	lc.s.c.note(&Query{Kind: KindConvertValue, SQL: lc.s.query, Stmt: true,
		Args: []driver.NamedValue{{Ordinal: lc.idx + 1, Value: v}}})
	return lc.vc.ConvertValue(v)
}
