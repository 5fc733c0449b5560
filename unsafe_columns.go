package idmap

import "unsafe"

// rowsTag is the tag's byte: only its address matters. It is how Bind finds
// the database and the map of a *sql.Rows.
//
// database/sql hides the driver's rows behind *sql.Rows, but its Columns
// method returns the slice that the driver's Columns returned, as it is. The
// rows of an idmap database hand out a column slice of their own with two
// more elements of capacity than length, beyond what any caller reads: the
// first holds a string whose bytes are idmap's private tag, which no other
// slice can hold, and the second a string whose data pointer is the rows
// themselves. Bind calls Columns and reads them back. A query pays no lock
// and no map for it (a registry under a mutex did: ~120 ns per query). The
// tag stays when the rows close: database/sql's Columns then fails, and a
// slice read before that names rows that report the close themselves.
// The invariant: the slice that Columns returns is the one the driver's
// rows returned, with its capacity, and the tag's address is idmap's alone.
// unsafe_columns_test.go checks the tag, and TestColumnsSliceIdentity fails
// loudly if a Go release ever copies the slice.
var rowsTag [1]byte

// tagColumns sets the two hidden elements of cols (whose capacity is at
// least len(cols)+2) to name r.
func tagColumns(cols []string, r *rows) {
	tail := cols[len(cols) : len(cols)+2]
	tail[0] = unsafe.String(&rowsTag[0], 1)
	tail[1] = unsafe.String((*byte)(unsafe.Pointer(r)), 1)
}

// taggedRows returns the rows that tagged cols, or nil.
func taggedRows(cols []string) *rows {
	if cap(cols)-len(cols) < 2 {
		return nil
	}
	tail := cols[len(cols) : len(cols)+2]
	if len(tail[0]) != 1 || unsafe.StringData(tail[0]) != &rowsTag[0] || len(tail[1]) != 1 {
		return nil
	}
	return (*rows)(unsafe.Pointer(unsafe.StringData(tail[1])))
}
