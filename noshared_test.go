package idmap_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// NoSharedMap: loads without a scope are stored nowhere (each gives its own
// objects, Get queries every time); scopes work as before.
func TestNoSharedMap(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "noshared.db")
	name := fmt.Sprintf("noshared-%s", t.Name())
	db, err := idmap.Open("sqlite3", dsn, idmap.NoSharedMap(), idmap.Name(name))
	require.NoError(t, err)
	defer db.Close()
	seedUsers(t, db, 3)
	bg := context.Background()

	a := queryUsers(t, bg, db, "SELECT id, name, email FROM users ORDER BY id")
	b := queryUsers(t, bg, db, "SELECT id, name, email FROM users ORDER BY id")
	require.NotSame(t, a[0], b[0], "two loads without a scope gave one object")
	require.Nil(t, idmap.Cached[User](bg, db, 1))
	stats := func() idmap.MapStats {
		st, ok := idmap.StatsOf(db)
		require.True(t, ok)
		return st.Shared
	}
	before := stats().Misses
	g, err := idmap.Get[User](bg, db, 1)
	require.NoError(t, err)
	require.Equal(t, "user1", g.Name)
	require.NotSame(t, a[0], g)
	require.Greater(t, stats().Misses, before, "the Get did not query")
	require.Zero(t, stats().Entries)

	ctx := idmap.NewContext(bg)
	s1 := queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
	s2 := queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
	require.Same(t, s1[0], s2[0], "a scope no longer gives one object per row")
	got, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Same(t, s1[0], got)
}
