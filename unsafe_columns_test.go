package idmap

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// TestTaggedColumns guards unsafe_columns.go: a tagged slice names its
// rows; a slice without the tag, with too little capacity, or whose hidden
// elements hold other strings names none.
func TestTaggedColumns(t *testing.T) {
	r := new(rows)
	cols := make([]string, 2, 4)
	tagColumns(cols, r)
	if got := taggedRows(cols); got != r {
		t.Fatalf("taggedRows of a tagged slice = %p; want %p", got, r)
	}
	if got := taggedRows(cols[:1]); got != nil {
		t.Error("a shorter slice over the same array names the rows")
	}
	other := make([]string, 4)
	other[2], other[3] = "\x00", "y" // one-byte strings, not the tag's address
	if got := taggedRows(other[:2]); got != nil {
		t.Error("a slice with other strings past its end names rows")
	}
	if got := taggedRows(make([]string, 2, 3)); got != nil {
		t.Error("a slice with one element of spare capacity names rows")
	}
	if got := taggedRows(nil); got != nil {
		t.Error("a nil slice names rows")
	}
}

// TestColumnsKeepTheTag: database/sql hands the driver's slice out as it
// is, so the tag survives (*sql.Rows).Columns: the premise of
// unsafe_columns.go, through a real driver.
func TestColumnsKeepTheTag(t *testing.T) {
	db, err := sql.Open("idmap+sqlite3", "file:unsafe_columns?mode=memory")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.QueryContext(context.Background(), "SELECT 1 AS a, 2 AS b")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 || taggedRows(cols) == nil {
		t.Fatalf("Columns = %q (cap %d): the tag is gone; database/sql copied the slice", cols, cap(cols))
	}
}
