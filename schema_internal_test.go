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

func TestUUIDDigits(t *testing.T) {
	const want = "a0eebc999c0b4ef8bb6d6bb9bd380a11"
	for _, s := range []string{
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
		"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "a0eebc999c0b4ef8bb6d6bb9bd380a11",
		"a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
	} {
		if got, ok := uuidDigits(s); !ok || got != want {
			t.Errorf("uuidDigits(%q) = %q, %v; want %q", s, got, ok, want)
		}
	}
	for _, s := range []string{
		"", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
		"-a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11-", "a0eebc99--9c0b4ef8bb6d6bb9bd380a11",
		"{a0eebc999c0b4ef8bb6d6bb9bd380a11", "g0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc99 9c0b4ef8bb6d6bb9bd380a11",
	} {
		if got, ok := uuidDigits(s); ok {
			t.Errorf("uuidDigits(%q) = %q; want no UUID", s, got)
		}
	}
}
