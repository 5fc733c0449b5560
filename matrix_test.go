package idmap_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

func TestIdentityAcrossQueriers(t *testing.T) {
	db, count := openCounted(t)
	seedUsers(t, db, 3)
	queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
		all := queryUsers(t, ctx, q, "SELECT id, name, email FROM users ORDER BY id")
		require.Len(t, all, 3)
		one := queryUsers(t, ctx, q, "SELECT * FROM users WHERE id = ?", 2)
		require.Same(t, all[1], one[0], "two queries, one row, two objects")

		before := count.Queries()
		got, err := idmap.Get[User](ctx, q, 2)
		require.NoError(t, err)
		require.Same(t, all[1], got)
		require.Zero(t, count.Queries()-before, "a Get hit sent a query")

		var single *User
		rows, err := q.QueryContext(ctx, "SELECT id, name, email FROM users WHERE id = 3")
		require.NoError(t, err)
		require.NoError(t, idmap.Bind(rows, &single))
		require.Same(t, all[2], single)
	})
}

// Recursive types are guarded: a pointer to the type itself is not a
// column, and building the model terminates.
type Node struct {
	ID       int64 `db:"id"`
	ParentID *int64
	Parent   *Node   `db:"-"`
	Children []*Node // not scannable: not a column
	Next     *Node   // not scannable: not a column
}

func (Node) TableName() string { return "nodes" }

func TestRecursiveType(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	mustExec(t, db, "CREATE TABLE nodes (id INTEGER PRIMARY KEY, parent_id INTEGER)")
	mustExec(t, db, "INSERT INTO nodes VALUES (1, NULL), (2, 1)")
	rows, err := db.QueryContext(ctx, "SELECT id, parent_id FROM nodes ORDER BY id")
	require.NoError(t, err)
	var ns []*Node
	require.NoError(t, idmap.Bind(rows, &ns))
	require.Len(t, ns, 2)
	ns[1].Parent, err = idmap.Get[Node](ctx, db, *ns[1].ParentID)
	require.NoError(t, err)
	require.Same(t, ns[0], ns[1].Parent)
	require.NotNil(t, idmap.Cached[Node](ctx, db, 1), "a complete Node (every column loaded) is served")
	runtime.KeepAlive(ns) // the shared map holds its objects weakly
}
