package idmap_test

import (
	"context"
	"database/sql"

	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// The query's own error comes back as the driver gave it; Bind's errors
// start with "idmap:"; bad input is an error, not a panic.
func TestQueryHelperErrors(t *testing.T) {
	db := openSQLite(t)
	seedUsers(t, db, 2)
	ctx := context.Background()

	_, err := idmap.Query[User](ctx, db, "SELECT id, name FROM no_such_table")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "idmap:", "a driver error is returned as it is")
	require.Contains(t, err.Error(), "no_such_table")
	_, err = idmap.QueryOne[User](ctx, db, "SELEC oops")
	require.Error(t, err)
	require.NotErrorIs(t, err, sql.ErrNoRows)

	_, err = idmap.Query[User](ctx, db, "SELECT id, name, 1 AS extra FROM users")
	require.ErrorIs(t, err, idmap.ErrNoField)
	require.True(t, strings.HasPrefix(err.Error(), "idmap: "), err.Error())

	var nilDB *sql.DB
	_, err = idmap.Query[User](ctx, nilDB, "SELECT 1")
	require.ErrorIs(t, err, idmap.ErrNotIdmap)
	_, err = idmap.QueryOne[User](ctx, nil, "SELECT 1")
	require.ErrorIs(t, err, idmap.ErrNotIdmap)
	//lint:ignore SA1012 a nil context is bad input that must not panic
	us, err := idmap.Query[User](nil, db, "SELECT id, name, email FROM users") //nolint:staticcheck
	require.NoError(t, err)
	require.Len(t, us, 2)
}
