package bench

import (
	"context"
	"testing"

	"github.com/georgysavva/scany/v2/sqlscan"

	"github.com/go-idmap/idmap"
)

// TestSameResults: every way the benchmarks load the 100 rows gives the same
// values, and Bind and Get give canonical pointers, so the benchmarks compare
// equal work.
func TestSameResults(t *testing.T) {
	bg := context.Background()
	forEach(t, func(t *testing.T, be *backend) {
		q := be.q(selectSQL)
		want, err := handScan(bg, be.plain, q, 1, selectLen)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != selectLen {
			t.Fatalf("handScan: %d rows; want %d", len(want), selectLen)
		}
		for i, u := range want {
			s := sampleUser(int64(i + 1))
			if u.ID != s.ID || u.Name != s.Name || u.Email != s.Email || u.Age != s.Age || !u.CreatedAt.Equal(s.CreatedAt) {
				t.Fatalf("row %d: got %+v; want %+v", i, *u, s)
			}
		}
		same := func(how string, got []*User) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%s: %d rows; want %d", how, len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.ID != w.ID || g.Name != w.Name || g.Email != w.Email || g.Age != w.Age || !g.CreatedAt.Equal(w.CreatedAt) {
					t.Fatalf("%s row %d: got %+v; want %+v", how, i, *g, *w)
				}
			}
		}
		var sx, sc []*User
		if err := be.sqlx.SelectContext(bg, &sx, q, 1, selectLen); err != nil {
			t.Fatal(err)
		}
		same("sqlx", sx)
		if err := sqlscan.Select(bg, be.plain, &sc, q, 1, selectLen); err != nil {
			t.Fatal(err)
		}
		same("scany", sc)
		ctx := idmap.NewContext(bg)
		b1, err := bind(ctx, be.idm, q)
		if err != nil {
			t.Fatal(err)
		}
		same("Bind", b1)
		b2, err := bind(ctx, be.idm, q)
		if err != nil {
			t.Fatal(err)
		}
		if b2[7] != b1[7] {
			t.Error("a second Bind in one scope gave a new pointer")
		}
		g, err := idmap.Get[User](ctx, be.idm, 8)
		if err != nil || g != b1[7] {
			t.Errorf("Get(8): %p, %v; want the bound %p", g, err, b1[7])
		}
	})
}
