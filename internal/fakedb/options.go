package fakedb

import (
	"context"
	"database/sql/driver"
)

// An Option configures a Driver; pass it to [New].
type Option func(*config)

// config is a Driver's configuration. It is written by New and read-only
// afterwards; its zero value (plus caps) is the default of every Option.
type config struct {
	caps            Caps
	badConnLenient  bool                                        // WithStickyBadConn(false)
	resetSession    func(ctx context.Context, connID int) error // nil: succeed
	isValid         func(connID int) bool                       // nil: valid
	checkNamedValue func(nv *driver.NamedValue) error           // nil: driver.ErrSkip
	columnConverter func(idx int) driver.ValueConverter         // nil: driver.DefaultParameterConverter
	numInput        func(query string) int                      // nil: -1
}

// WithCaps sets which optional interfaces the driver's values implement.
// Default: AllCaps. See [Caps.Check] for the supported conn combinations.
func WithCaps(c Caps) Option { return func(cfg *config) { cfg.caps = c } }

// WithStickyBadConn sets whether a connection that once returned
// driver.ErrBadConn (from the Handler or from a row) stays bad, as a real
// driver's does: its IsValid then returns false, its ResetSession and every
// later statement return driver.ErrBadConn without calling the Handler
// (the calls are still logged). With false, the connection goes on as if
// nothing had happened, as a careless driver would. Default: true.
func WithStickyBadConn(on bool) Option { return func(cfg *config) { cfg.badConnLenient = !on } }

// WithResetSession sets what SessionResetter.ResetSession returns for a
// connection that is not bad. Default: nil (success).
func WithResetSession(f func(ctx context.Context, connID int) error) Option {
	return func(cfg *config) { cfg.resetSession = f }
}

// WithIsValid sets what Validator.IsValid returns for a connection that is
// not bad. Default: true.
func WithIsValid(f func(connID int) bool) Option {
	return func(cfg *config) { cfg.isValid = f }
}

// WithCheckNamedValue sets the CheckNamedValue of the conn and of the stmt
// (CapConnNamedValueChecker, CapStmtNamedValueChecker): f may convert
// nv.Value in place and return nil, reject it with an error, or return
// driver.ErrSkip or driver.ErrRemoveArgument, exactly as database/sql
// expects (it compares those two with ==, so do not wrap them). The Query
// logged (KindCheckNamedValue) holds the value before f ran. Default:
// driver.ErrSkip, so that database/sql converts the value as it would
// without the interface.
func WithCheckNamedValue(f func(nv *driver.NamedValue) error) Option {
	return func(cfg *config) { cfg.checkNamedValue = f }
}

// WithColumnConverter sets the converter that the stmt's ColumnConverter
// returns for argument index idx (CapColumnConverter). database/sql only
// asks for indexes below NumInput, so this needs [WithNumInput] too.
// Default: driver.DefaultParameterConverter.
func WithColumnConverter(f func(idx int) driver.ValueConverter) Option {
	return func(cfg *config) { cfg.columnConverter = f }
}

// WithNumInput sets what Stmt.NumInput returns for a statement. database/sql
// checks the number of arguments against it when it is >= 0 and consults
// ColumnConverter only for indexes below it. Default: -1 (unknown).
func WithNumInput(f func(query string) int) Option {
	return func(cfg *config) { cfg.numInput = f }
}
