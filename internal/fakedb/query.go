package fakedb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
)

// A Handler decides what the driver answers. It is called for every call of
// the kinds KindConnect to KindRollback, with the context database/sql
// passed (context.Background() for the methods that take none). It may
// block, for example on a [Pause], to hold the caller at that point.
//
// A nil Result is an empty answer: no columns and no rows for a query, 0
// rows affected for an exec. The Result is ignored for the other kinds. An
// error is returned to database/sql as it is: driver.ErrBadConn makes it
// retry on another connection (and marks this one bad, see
// [WithStickyBadConn]); driver.ErrSkip, for a KindQuery or KindExec with
// Stmt false, makes it prepare the statement instead, as drivers without
// client-side interpolation do.
//
// The Handler is called from many goroutines at once when database/sql uses
// several connections; it must be safe for that.
type Handler func(ctx context.Context, q *Query) (*Result, error)

// Kind says which driver method a Query records.
type Kind int

// The kinds the Handler answers.
const (
	KindConnect  Kind = iota + 1 // a new connection (Driver.Open, Connector.Connect)
	KindPing                     // Pinger.Ping
	KindPrepare                  // Conn.Prepare, ConnPrepareContext.PrepareContext
	KindQuery                    // Queryer(Context).Query(Context), Stmt.Query, StmtQueryContext.QueryContext
	KindExec                     // Execer(Context).Exec(Context), Stmt.Exec, StmtExecContext.ExecContext
	KindBegin                    // Conn.Begin, ConnBeginTx.BeginTx
	KindCommit                   // Tx.Commit
	KindRollback                 // Tx.Rollback
)

// The kinds that are only recorded in the log: the Handler never sees them.
// Their answers come from the Options.
const (
	KindResetSession    Kind = iota + 101 // SessionResetter.ResetSession
	KindIsValid                           // Validator.IsValid
	KindCheckNamedValue                   // NamedValueChecker.CheckNamedValue, of the conn or (Stmt true) the stmt; Args holds the value received
	KindConvertValue                      // ConvertValue of the converter from ColumnConverter; Args holds the value received, Ordinal = column index + 1
)

var kindNames = map[Kind]string{
	KindConnect:         "Connect",
	KindPing:            "Ping",
	KindPrepare:         "Prepare",
	KindQuery:           "Query",
	KindExec:            "Exec",
	KindBegin:           "Begin",
	KindCommit:          "Commit",
	KindRollback:        "Rollback",
	KindResetSession:    "ResetSession",
	KindIsValid:         "IsValid",
	KindCheckNamedValue: "CheckNamedValue",
	KindConvertValue:    "ConvertValue",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// A Query is one call the driver received. The Handler gets a pointer to a
// fresh Query per call; Driver.Log returns copies.
type Query struct {
	ConnID    int                 // the connection, numbered 1, 2, … in the order they were opened
	DSN       string              // the data source name the connection was opened with
	Kind      Kind                // which method was called
	SQL       string              // the statement text (KindPrepare, KindQuery, KindExec and the value checks of a stmt)
	Args      []driver.NamedValue // the arguments as the driver received them, after database/sql's conversion
	Stmt      bool                // the call came through a prepared driver.Stmt
	InTx      bool                // a transaction was open on the connection
	TxOptions driver.TxOptions    // the options of a KindBegin (zero for Conn.Begin)
}

func (q Query) String() string {
	s := fmt.Sprintf("conn %d %v", q.ConnID, q.Kind)
	if q.Stmt {
		s += " (stmt)"
	}
	if q.InTx {
		s += " (tx)"
	}
	if q.SQL != "" {
		s += fmt.Sprintf(" %q", q.SQL)
	}
	if len(q.Args) > 0 {
		vs := make([]any, len(q.Args))
		for i, a := range q.Args {
			vs[i] = a.Value
		}
		s += fmt.Sprintf(" %v", vs)
	}
	return s
}

// A Result is what a Handler answers for a KindQuery or a KindExec. The
// driver never modifies a Result, so one Result may answer many calls, at
// once.
//
// Rows are numbered from 1: n is the number of the call to driver.Rows.Next
// on this result set, so n = len(Rows)+1 is the call that would return
// io.EOF. A zero ErrAt or PanicAt means none.
type Result struct {
	Columns []string         // returned as it is by Rows.Columns, never copied
	Rows    [][]driver.Value // each row has one value per column; []byte values are copied per Next
	Types   []ColumnType     // optional metadata per column, for the RowsColumnType* interfaces

	// ErrAt makes call n = ErrAt of Next return RowErr (a generic error if
	// RowErr is nil) instead of row n, and every later call too; rows before
	// it are returned. ErrAt = 3 is "an error on the third row".
	// driver.ErrBadConn marks the connection bad.
	ErrAt  int
	RowErr error

	// PanicAt makes call n = PanicAt of Next panic with PanicValue (a
	// string naming the row if PanicValue is nil).
	PanicAt    int
	PanicValue any

	// BeforeRow, if set, is called at the start of each call n of Next,
	// before PanicAt and ErrAt are looked at. It may block to pause the
	// reader deterministically ([Pause.AtRow]); database/sql holds the
	// connection's lock meanwhile, so the test must not use that same
	// connection until it lets the hook return.
	BeforeRow func(n int)

	// ReuseBuffers makes Next return []byte values in buffers owned by the
	// rows, one per column, which the next call to Next, NextResultSet or
	// Close overwrites with 0xEE bytes, as drivers that reuse their network
	// buffers do. A reader that keeps a []byte from a row without copying
	// it sees the garbage.
	ReuseBuffers bool

	// NextSet is the next result set, for driver.RowsNextResultSet. Only
	// its Columns, Rows, Types, ErrAt, RowErr, PanicAt, PanicValue,
	// BeforeRow, ReuseBuffers and NextSet are used.
	NextSet *Result

	// The driver.Result of a KindExec.
	LastInsertID int64
	RowsAffected int64
}

// ColumnType is what the RowsColumnType* interfaces report for one column.
// The zero value reports "unknown" everywhere (ok false) and the default
// scan type.
type ColumnType struct {
	DatabaseTypeName string // RowsColumnTypeDatabaseTypeName

	Length    int64 // RowsColumnTypeLength, if HasLength
	HasLength bool

	Nullable    bool // RowsColumnTypeNullable, if HasNullable
	HasNullable bool

	Precision, Scale  int64 // RowsColumnTypePrecisionScale, if HasPrecisionScale
	HasPrecisionScale bool

	// ScanType is returned by RowsColumnTypeScanType. If nil, the type of
	// the column's first non-nil value in Rows is returned, else the type
	// of any.
	ScanType reflect.Type
}
