package idmap

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/go-idmap/idmap/internal/fakedb"
)

// baseQuery keeps what the rows gave even when the driver reuses its
// buffers for []byte values, as go-sql-driver/mysql does: the catalogue's
// second row must not overwrite the first.
func TestBaseQueryCopiesBytes(t *testing.T) {
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		return &fakedb.Result{
			Columns:      []string{"child", "parent"},
			Rows:         [][]driver.Value{{[]byte("posts"), []byte("users")}, {[]byte("comments"), []byte("posts")}},
			ReuseBuffers: true,
		}, nil
	})
	bc, err := d.Connector().Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	rows, err := baseQuery(context.Background(), bc, "SELECT child, parent")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"posts", "users"}, {"comments", "posts"}}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows; want %d", len(rows), len(want))
	}
	for i, w := range want {
		if got := [2]string{asString(rows[i][0]), asString(rows[i][1])}; got != w {
			t.Errorf("row %d: got %q; want %q", i, got, w)
		}
	}
}
