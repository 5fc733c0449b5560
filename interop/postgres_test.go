package interop_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// sqlx picks its bind variables by driver name; it does not know the idmap
// names until told.
func init() {
	sqlx.BindDriver("idmap+pgx", sqlx.DOLLAR)
	sqlx.BindDriver("idmap+postgres", sqlx.DOLLAR)
}

var pgSeq atomic.Int64

// runTag, with the process id, makes this process's schemas unique on the
// shared server (the process id alone is not: test processes in other PID
// namespaces reuse ids).
var runTag = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// pgDSN returns the DSN of a new schema of the PostgreSQL server named by
// IDMAP_PG_DSN, dropped when the test ends, or skips the test.
func pgDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("IDMAP_PG_DSN")
	if dsn == "" {
		t.Skip("Postgres tests skipped: set IDMAP_PG_DSN (scripts/start-servers.sh)")
	}
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer admin.Close()
	schema := fmt.Sprintf("idmap_interop%d_%s_%d", os.Getpid(), runTag, pgSeq.Add(1))
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		a, err := sql.Open("pgx", dsn)
		if err == nil {
			a.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE")
			a.Close()
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// sqlx.Open("idmap+pgx", …) after sqlx.BindDriver: Rebind and named
// queries give $n, the reads go through idmap's driver and Intern makes
// their objects canonical, and sqlx's writes expire what they touch.
func TestSqlxPostgresBindDriver(t *testing.T) {
	require.Equal(t, sqlx.DOLLAR, sqlx.BindType("idmap+pgx"))
	require.Equal(t, sqlx.DOLLAR, sqlx.BindType("idmap+postgres"))
	dsn := pgDSN(t)
	ctx := context.Background()
	x, err := sqlx.Open("idmap+pgx", dsn)
	require.NoError(t, err)
	defer x.Close()
	x.MustExecContext(ctx, "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")

	// A named INSERT: sqlx compiles :id, :name to $1, $2.
	_, err = x.NamedExecContext(ctx, "INSERT INTO users (id, name) VALUES (:id, :name)",
		[]*User{{ID: 1, Name: "ann"}, {ID: 2, Name: "bob"}})
	require.NoError(t, err)

	require.Equal(t, "SELECT name FROM users WHERE id = $1", x.Rebind("SELECT name FROM users WHERE id = ?"))
	require.Equal(t, "$1", sqlx.NewDb(x.DB, "pgx").Rebind("?"), "naming the base driver works too")
	var us []*User
	require.NoError(t, x.SelectContext(ctx, &us, x.Rebind("SELECT id, name FROM users WHERE id >= ? ORDER BY id"), 1))
	require.Len(t, us, 2)
	require.NoError(t, idmap.Intern(ctx, x.DB, us))
	u1, err := idmap.Get[User](ctx, x.DB, 1) // no query: interned
	require.NoError(t, err)
	require.Same(t, us[0], u1)

	// A named UPDATE through sqlx expires key 1: Get loads the new row.
	_, err = x.NamedExecContext(ctx, "UPDATE users SET name = :name WHERE id = :id", map[string]any{"id": 1, "name": "bea"})
	require.NoError(t, err)
	u1, err = idmap.Get[User](ctx, x.DB, 1)
	require.NoError(t, err)
	require.Equal(t, "bea", u1.Name)
	require.NotSame(t, us[0], u1)

	// sqlx's own rows bind with idmap.Bind too.
	rows, err := x.QueryxContext(ctx, x.Rebind("SELECT id, name FROM users WHERE id = ?"), 2)
	require.NoError(t, err)
	var bob *User
	require.NoError(t, idmap.Bind(rows.Rows, &bob))
	require.Same(t, us[1], bob)
}

// Without BindDriver, sqlx leaves "?" in place for a name it does not know,
// and PostgreSQL rejects it: the failure the README's advice avoids.
func TestSqlxPostgresWithoutBindDriver(t *testing.T) {
	const name = "idmap+pgx-interop-unbound"
	require.Equal(t, sqlx.UNKNOWN, sqlx.BindType(name))
	dsn := pgDSN(t)
	db, err := idmap.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	x := sqlx.NewDb(db, name)
	x.MustExec("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
	var n int
	err = x.Get(&n, x.Rebind("SELECT count(*) FROM users WHERE id = ?"), 1)
	require.Error(t, err)
	require.NoError(t, x.Get(&n, "SELECT count(*) FROM users WHERE id = $1", 1))
}
