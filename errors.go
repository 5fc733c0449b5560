package idmap

import (
	"errors"
	"fmt"
)

// Sentinel errors. Each is returned wrapped, with the type, column or table at
// fault, so test them with errors.Is.
var (
	// ErrNotIdmap is returned by Bind, Query, QueryOne, Get, GetMany,
	// GetByKeys and Intern when the rows or the database were not produced
	// by an idmap driver, or the Querier is nil.
	ErrNotIdmap = errors.New("idmap: not an idmap database")

	// ErrNotMapped is returned by Get, GetMany, GetByKeys and Intern for a
	// type that has no TableName method and was not registered with Model,
	// and by Bind for such a type in a destination that needs a mapped type.
	ErrNotMapped = errors.New("idmap: type is not mapped")

	// ErrNoTable is returned for a mapped type whose table name is empty.
	ErrNoTable = errors.New("idmap: mapped type has no table")

	// ErrModel is returned (and panicked by Model) for a type that cannot
	// be mapped: not a struct, a table or column name that is not a plain
	// SQL name (see docs/security.md), two fields on one column, a
	// recursive or pointer embedding, a TableName method that panics.
	ErrModel = errors.New("idmap: invalid model")

	// ErrNoPrimaryKey is returned for a mapped type with no primary key.
	ErrNoPrimaryKey = errors.New("idmap: mapped type has no primary key")

	// ErrBadDestination is returned by Bind for a destination of the wrong
	// shape: nil, not a pointer, or a mapped type held by value.
	ErrBadDestination = errors.New("idmap: bad Bind destination")

	// ErrNoField is returned by Bind for a result column that no field of
	// the destination type takes.
	ErrNoField = errors.New("idmap: column has no field")

	// ErrDuplicateColumn is returned by Bind for a result with two columns
	// for one field (SELECT id, name, upper(name) AS name). It matches
	// ErrNoField too: both are a result that does not fit the type.
	ErrDuplicateColumn error = &subKind{"idmap: duplicate result column", ErrNoField}

	// ErrKey is returned for a bad primary key: a result without the key's
	// columns, a NULL key, or key values of the wrong number or type.
	ErrKey = errors.New("idmap: bad primary key")

	// ErrUnknownDriver is returned when the base driver of an idmap driver is
	// not registered with database/sql.
	ErrUnknownDriver = errors.New("idmap: base driver not registered")
)

// Error is the type of the errors idmap returns for bad input. Its message
// says what is at fault; errors.Is matches its kind, one of the sentinels
// above.
type Error struct {
	Kind error  // one of the sentinel errors
	Msg  string // the whole message, starting with "idmap: "
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// errorf returns an *Error of kind, with the message prefixed "idmap: ".
func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: "idmap: " + fmt.Sprintf(format, args...)}
}

// subKind is a sentinel that is also a case of a broader one.
type subKind struct {
	msg    string
	parent error
}

// Error returns the sentinel's text; Unwrap returns the broader sentinel, so
// that errors.Is matches both.
func (e *subKind) Error() string { return e.msg }
func (e *subKind) Unwrap() error { return e.parent }
