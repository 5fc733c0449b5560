package idmap

//lint:file-ignore SA1019 idmap wraps base drivers that may implement only the interfaces deprecated since Go 1.8/1.9 (Stmt.Exec, Stmt.Query, ColumnConverter, Conn.Begin): it must pass them on as they are

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// stmt is a prepared statement of the base driver, under sqlmw's statement.
//
// sqlmw's statement claims NamedValueChecker and ColumnConverter whatever
// the base has, and its CheckNamedValue skips the base statement's
// ColumnConverter. stmt's CheckNamedValue does what database/sql does with
// the base statement and connection, whole, so that sqlmw passes on the
// same answer.
type stmt struct {
	base driver.Stmt
	conn *connState
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
	_ driver.ColumnConverter   = (*stmt)(nil)
)

// Close and NumInput are the base statement's.
func (s *stmt) Close() error  { return s.base.Close() }
func (s *stmt) NumInput() int { return s.base.NumInput() }

//nolint:staticcheck // driver.Stmt's context-less methods, for the fallbacks.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) { return s.base.Exec(args) }

//nolint:staticcheck
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) { return s.base.Query(args) }

// ExecContext and QueryContext fall back as database/sql does for a
// statement without them.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if sc, ok := s.base.(driver.StmtExecContext); ok {
		return sc.ExecContext(ctx, args)
	}
	dargs, err := valuesFor(ctx, args)
	if err != nil {
		return nil, err
	}
	return s.base.Exec(dargs) //nolint:staticcheck
}

// QueryContext is the base statement's, or its Query after valuesFor (see
// ExecContext).
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if sc, ok := s.base.(driver.StmtQueryContext); ok {
		return sc.QueryContext(ctx, args)
	}
	dargs, err := valuesFor(ctx, args)
	if err != nil {
		return nil, err
	}
	return s.base.Query(dargs) //nolint:staticcheck
}

// valuesFor is what database/sql does before calling a statement's
// context-less Exec or Query: positional values only, and not after ctx is
// done.
func valuesFor(ctx context.Context, args []driver.NamedValue) ([]driver.Value, error) {
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return dargs, nil
}

// ColumnConverter is the base statement's converter for argument idx, or
// driver.DefaultParameterConverter for a base without one: sqlmw's
// statement claims ColumnConverter whatever the base has (see stmt).
func (s *stmt) ColumnConverter(idx int) driver.ValueConverter {
	if cc, ok := s.base.(driver.ColumnConverter); ok { //nolint:staticcheck
		return cc.ColumnConverter(idx)
	}
	return driver.DefaultParameterConverter
}

// CheckNamedValue follows database/sql's driverArgsConnLocked: the
// statement's checker, else the connection's; on driver.ErrSkip (or with
// neither) the statement's ColumnConverter, else the default conversion.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	nvc, ok := s.base.(driver.NamedValueChecker)
	if !ok {
		nvc, ok = s.conn.base.(driver.NamedValueChecker)
	}
	if ok {
		if err := nvc.CheckNamedValue(nv); err != driver.ErrSkip {
			return err
		}
	}
	if cc, ok := s.base.(driver.ColumnConverter); ok { //nolint:staticcheck
		return columnConvert(cc, s.base.NumInput(), nv)
	}
	var err error
	nv.Value, err = driver.DefaultParameterConverter.ConvertValue(nv.Value)
	return err
}

// columnConvert is database/sql's ccChecker.
// Its errors, and those below, are database/sql's own texts (not
// prefixed with "idmap:"): idmap behaves here as database/sql does with
// the base driver alone (TestDriverBehavesAsBase).
func columnConvert(cc driver.ColumnConverter, want int, nv *driver.NamedValue) error { //nolint:staticcheck
	index := nv.Ordinal - 1
	if want <= index {
		return nil
	}
	if vr, ok := nv.Value.(driver.Valuer); ok {
		sv, err := callValuer(vr)
		if err != nil {
			return err
		}
		if !driver.IsValue(sv) {
			return fmt.Errorf("non-subset type %T returned from Value", sv)
		}
		nv.Value = sv
	}
	arg := nv.Value
	var err error
	nv.Value, err = cc.ColumnConverter(index).ConvertValue(arg)
	if err != nil {
		return err
	}
	if !driver.IsValue(nv.Value) {
		return fmt.Errorf("driver ColumnConverter error converted %T to unsupported type %T", arg, nv.Value)
	}
	return nil
}

// namedValueToValue is database/sql's function of that name, with its error
// text: a context-less Exec or Query takes positional values only.
func namedValueToValue(named []driver.NamedValue) ([]driver.Value, error) {
	dargs := make([]driver.Value, len(named))
	for n, param := range named {
		if len(param.Name) > 0 {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		dargs[n] = param.Value
	}
	return dargs, nil
}
