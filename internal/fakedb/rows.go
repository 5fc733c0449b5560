package fakedb

import (
	"bytes"
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
)

// The capability types below implement their interfaces only together with
// the base value, since each of those interfaces embeds driver.Rows.
var (
	_ driver.Rows              = (*rows)(nil)
	_ driver.RowsNextResultSet = struct {
		*rows
		rowsNextResultSet
	}{}
	_ driver.RowsColumnTypeDatabaseTypeName = struct {
		*rows
		rowsColumnTypeDatabaseTypeName
	}{}
	_ driver.RowsColumnTypeLength = struct {
		*rows
		rowsColumnTypeLength
	}{}
	_ driver.RowsColumnTypeNullable = struct {
		*rows
		rowsColumnTypeNullable
	}{}
	_ driver.RowsColumnTypePrecisionScale = struct {
		*rows
		rowsColumnTypePrecisionScale
	}{}
	_ driver.RowsColumnTypeScanType = struct {
		*rows
		rowsColumnTypeScanType
	}{}
)

// rows is the base driver.Rows value: it plays back a Result.
type rows struct {
	c      *conn
	res    *Result  // the current result set; never nil, never modified
	pos    int      // rows of res returned so far
	bufs   [][]byte // per column, the buffers of ReuseBuffers
	closed bool     // Close was called
}

// newRows returns rows playing back res, dressed in the Driver's caps.
func (c *conn) newRows(res *Result) driver.Rows {
	if res == nil {
		res = &Result{}
	}
	c.d.count(func(s *Stats) { s.OpenRows++ })
	return pickRows(&rows{c: c, res: res}, c.d.cfg.caps)
}

func (r *rows) Columns() []string { return r.res.Columns }

func (r *rows) Close() error {
	if r.closed {
		return fmt.Errorf("fakedb: conn %d: rows closed twice", r.c.id)
	}
	r.closed = true
	r.scribble()
	r.c.d.count(func(s *Stats) { s.OpenRows-- })
	return nil
}

func (r *rows) Next(dest []driver.Value) error {
	if r.closed {
		return fmt.Errorf("fakedb: conn %d: Next on closed rows", r.c.id)
	}
	res, n := r.res, r.pos+1
	if res.BeforeRow != nil {
		res.BeforeRow(n)
	}
	if n == res.PanicAt {
		v := res.PanicValue
		if v == nil {
			v = fmt.Sprintf("fakedb: panic at row %d", n)
		}
		panic(v)
	}
	if n == res.ErrAt {
		err := res.RowErr
		if err == nil {
			err = fmt.Errorf("fakedb: error at row %d", n)
		}
		r.c.check(err)
		return err
	}
	if n > len(res.Rows) {
		return io.EOF
	}
	r.scribble()
	r.pos = n
	row := res.Rows[n-1]
	for i := range dest {
		var v driver.Value
		if i < len(row) {
			v = row[i]
		}
		if b, ok := v.([]byte); ok {
			v = r.bytes(i, b)
		}
		dest[i] = v
	}
	return nil
}

// bytes returns a copy of column i's value b: a fresh one, or the column's
// reused buffer under ReuseBuffers.
func (r *rows) bytes(i int, b []byte) []byte {
	if !r.res.ReuseBuffers {
		return bytes.Clone(b)
	}
	for len(r.bufs) <= i {
		r.bufs = append(r.bufs, nil)
	}
	r.bufs[i] = append(r.bufs[i][:0], b...)
	return r.bufs[i][:len(b):len(b)]
}

// scribble overwrites the reused buffers, so that a []byte kept from the
// previous row shows garbage.
func (r *rows) scribble() {
	for _, buf := range r.bufs {
		for j := range buf {
			buf[j] = 0xEE
		}
	}
}

// colType returns the metadata of column i.
func (r *rows) colType(i int) ColumnType {
	if i >= 0 && i < len(r.res.Types) {
		return r.res.Types[i]
	}
	return ColumnType{}
}

// rowsNextResultSet carries driver.RowsNextResultSet (CapRowsNextResultSet),
// playing back Result.NextSet.
type rowsNextResultSet struct{ r *rows }

func (x rowsNextResultSet) HasNextResultSet() bool { return x.r.res.NextSet != nil }

func (x rowsNextResultSet) NextResultSet() error {
	r := x.r
	if r.res.NextSet == nil {
		return io.EOF
	}
	r.scribble()
	r.res, r.pos = r.res.NextSet, 0
	return nil
}

// rowsColumnTypeDatabaseTypeName carries driver.RowsColumnTypeDatabaseTypeName
// (CapRowsColumnTypeDatabaseTypeName).
type rowsColumnTypeDatabaseTypeName struct{ r *rows }

func (x rowsColumnTypeDatabaseTypeName) ColumnTypeDatabaseTypeName(index int) string {
	return x.r.colType(index).DatabaseTypeName
}

// rowsColumnTypeLength carries driver.RowsColumnTypeLength
// (CapRowsColumnTypeLength).
type rowsColumnTypeLength struct{ r *rows }

func (x rowsColumnTypeLength) ColumnTypeLength(index int) (length int64, ok bool) {
	ct := x.r.colType(index)
	return ct.Length, ct.HasLength
}

// rowsColumnTypeNullable carries driver.RowsColumnTypeNullable
// (CapRowsColumnTypeNullable).
type rowsColumnTypeNullable struct{ r *rows }

func (x rowsColumnTypeNullable) ColumnTypeNullable(index int) (nullable, ok bool) {
	ct := x.r.colType(index)
	return ct.Nullable, ct.HasNullable
}

// rowsColumnTypePrecisionScale carries driver.RowsColumnTypePrecisionScale
// (CapRowsColumnTypePrecisionScale).
type rowsColumnTypePrecisionScale struct{ r *rows }

func (x rowsColumnTypePrecisionScale) ColumnTypePrecisionScale(index int) (precision, scale int64, ok bool) {
	ct := x.r.colType(index)
	return ct.Precision, ct.Scale, ct.HasPrecisionScale
}

// rowsColumnTypeScanType carries driver.RowsColumnTypeScanType
// (CapRowsColumnTypeScanType).
type rowsColumnTypeScanType struct{ r *rows }

func (x rowsColumnTypeScanType) ColumnTypeScanType(index int) reflect.Type {
	if t := x.r.colType(index).ScanType; t != nil {
		return t
	}
	for _, row := range x.r.res.Rows {
		if index < len(row) && row[index] != nil {
			return reflect.TypeOf(row[index])
		}
	}
	return reflect.TypeFor[any]()
}
