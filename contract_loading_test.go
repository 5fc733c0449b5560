package idmap_test

import (
	"context"
	"database/sql"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// The contract (SPEC.md), once per base driver (see servers_test.go), one
// file per area: contract_loading_test.go (identity, Get, Query, GetMany,
// column types, locking reads), contract_transactions_test.go (isolation,
// snapshots, autocommit), contract_expiry_test.go (what a write expires),
// contract_keys_test.go (key values as the server reads them) and
// contract_catalogue_test.go (writes the database makes on a statement's
// behalf). The other tests of an area sit in the file named for it:
// mapper_test.go, binder_test.go, get_test.go, getmany_test.go,
// intern_test.go, copy_test.go, scope_test.go, transaction_test.go,
// expiry_test.go, flush_test.go, refs_test.go, stats_test.go.

// Objects are canonical on every driver and over *sql.DB, *sql.Conn and
// *sql.Tx: two queries of a row give one pointer, temporary fields survive,
// a Get hit sends no query and a miss one.
func TestContractIdentity(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
			all := queryUsers(t, ctx, q, "SELECT id, name, email FROM users ORDER BY id")
			require.Len(t, all, 3)
			one := queryUsers(t, ctx, q, d.q("SELECT id, name, email FROM users WHERE name = ?"), "user2")
			require.Same(t, all[1], one[0])
			all[1].Visits = 7
			again := queryUsers(t, ctx, q, "SELECT id, name, email FROM users ORDER BY id DESC")
			require.Equal(t, 7, again[1].Visits, "a temporary field was lost")

			before := count.Queries()
			for _, k := range []any{2, int32(2), "2"} {
				got, err := idmap.Get[User](ctx, q, k)
				require.NoError(t, err)
				require.Same(t, all[1], got)
			}
			require.Zero(t, count.Queries()-before, "a Get hit reached the server")

			before = count.Queries()
			p, err := idmap.Get[Post](ctx, q, 1)
			require.NoError(t, err)
			require.Equal(t, "post1", p.Title)
			require.Equal(t, int64(1), count.Queries()-before, "a Get miss is one query")
			_, err = idmap.Get[Post](ctx, q, 42)
			require.ErrorIs(t, err, sql.ErrNoRows)
		})
	})
}

// Locking reads are never answered from the map, and refresh what they load.
func TestContractLockingRead(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect == "sqlite" {
			t.Skip("SQLite has no SELECT … FOR UPDATE")
		}
		d.seed(t, db, 1)
		ctx := idmap.NewContext(context.Background())
		u, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		// Change the row behind idmap's back.
		behind(t, db, d.q("UPDATE users SET name = ? WHERE id = ?"), "behind", 1)
		got, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
		require.Equal(t, "user1", got.Name, "(a write behind idmap's back is not seen: expected)")

		locks := []string{"FOR UPDATE", "FOR SHARE"}
		if d.dialect == "mysql" {
			locks = []string{"FOR UPDATE", "LOCK IN SHARE MODE"} // MariaDB has no FOR SHARE
		}
		for _, lock := range locks {
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			before := count.Queries()
			rows, err := tx.QueryContext(ctx, "SELECT id, name, email FROM users WHERE id = 1 "+lock)
			require.NoError(t, err)
			var us []*User
			require.NoError(t, idmap.Bind(rows, &us))
			require.Equal(t, int64(1), count.Queries()-before)
			require.Same(t, u, us[0], "a locking read in the scope's transaction refreshes in place")
			require.Equal(t, "behind", us[0].Name, "a locking read did not refresh")
			require.NoError(t, tx.Commit())
		}
	})
}

// behind runs a statement on the base connection, bypassing idmap.
func behind(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	conn, err := db.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Raw(func(dc any) error {
		bc := dc.(interface{ Unwrap() driverConn }).Unwrap()
		_, err := execBase(bc, query, args...)
		return err
	}))
}

// Query and QueryOne bind what Bind binds, on every driver and Querier.
func TestContractQueryHelpers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
			us, err := idmap.Query[User](ctx, q, d.q("SELECT id, name, email FROM users WHERE id >= ? ORDER BY id"), 2)
			require.NoError(t, err)
			require.Len(t, us, 2)
			require.Equal(t, "user2", us[0].Name)
			u2, err := idmap.Get[User](ctx, q, 2)
			require.NoError(t, err)
			require.Same(t, us[0], u2, "Query gives the canonical objects")

			one, err := idmap.QueryOne[User](ctx, q, d.q("SELECT id, name, email FROM users WHERE name = ?"), "user3")
			require.NoError(t, err)
			require.Same(t, us[1], one)

			none, err := idmap.QueryOne[User](ctx, q, d.q("SELECT id, name, email FROM users WHERE id = ?"), 99)
			require.ErrorIs(t, err, sql.ErrNoRows)
			require.Nil(t, none)

			empty, err := idmap.Query[User](ctx, q, d.q("SELECT id, name, email FROM users WHERE id = ?"), 99)
			require.NoError(t, err)
			require.NotNil(t, empty, "no rows: an empty slice")
			require.Empty(t, empty)

			// A type that is not mapped, and a single column.
			type nameOnly struct{ Name string }
			ns, err := idmap.Query[nameOnly](ctx, q, "SELECT name FROM users ORDER BY id")
			require.NoError(t, err)
			require.Len(t, ns, 3)
			require.Equal(t, "user1", ns[0].Name)
			n, err := idmap.QueryOne[int64](ctx, q, "SELECT COUNT(*) FROM users")
			require.NoError(t, err)
			require.Equal(t, int64(3), *n)
		})
	})
}

func TestContractGetMany(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 5)
		mustExec(t, db, "CREATE TABLE memberships (user_id INTEGER, grp VARCHAR(20), role VARCHAR(20), PRIMARY KEY (user_id, grp))")
		mustExec(t, db, "INSERT INTO memberships VALUES (1, 'a', 'admin'), (1, 'b', 'member'), (2, 'a', 'member')")
		queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
			u2, err := idmap.Get[User](ctx, q, 2)
			require.NoError(t, err)
			before := count.Queries()
			got, err := idmap.GetMany[User](ctx, q, 3, 2, 99, "1", 3)
			require.NoError(t, err)
			require.Equal(t, int64(1), count.Queries()-before, "misses load in one query")
			require.Len(t, got, 5)
			require.Same(t, u2, got[1], "a hit is the canonical object")
			require.Nil(t, got[2], "an absent row is nil")
			require.Equal(t, "user3", got[0].Name)
			require.Equal(t, "user1", got[3].Name)
			require.Same(t, got[0], got[4], "one key twice, one object")

			before = count.Queries()
			again, err := idmap.GetMany[User](ctx, q, 1, 2, 3)
			require.NoError(t, err)
			require.Zero(t, count.Queries()-before, "all hits: no query")
			require.Same(t, got[3], again[0])

			ms, err := idmap.GetMany[Membership](ctx, q, []any{1, "b"}, []any{2, "a"}, []any{3, "a"})
			require.NoError(t, err)
			require.Equal(t, "member", ms[0].Role)
			require.Equal(t, int64(2), ms[1].UserID)
			require.Nil(t, ms[2])
			m1, err := idmap.Get[Membership](ctx, q, 1, "b")
			require.NoError(t, err)
			require.Same(t, ms[0], m1)

			_, err = idmap.GetMany[Membership](ctx, q, 1)
			require.ErrorIs(t, err, idmap.ErrKey)
			empty, err := idmap.GetMany[User](ctx, q)
			require.NoError(t, err)
			require.Empty(t, empty)
		})
	})
}

// colTypes has a field of each kind Bind converts itself, and some it
// leaves to Rows.Scan.
type colTypes struct {
	ID  int64          `db:"id"`
	I8  int8           `db:"i8"`
	I16 int16          `db:"i16"`
	I32 int32          `db:"i32"`
	I64 int64          `db:"i64"`
	U8  uint8          `db:"u8"`
	U32 uint32         `db:"u32"`
	F32 float32        `db:"f32"`
	F64 float64        `db:"f64"`
	S   convStr        `db:"s"`
	B   []byte         `db:"b"`
	TS  time.Time      `db:"ts"`
	OK  bool           `db:"ok"`
	PS  *string        `db:"ps"`
	PI  *int64         `db:"pi"`
	NS  sql.NullString `db:"ns"`
	A   any            `db:"a"`
	D   string         `db:"d"`
}

// TestContractColumnTypes: on every driver, Bind gives for each column type
// what a hand-written Scan of the same query gives, NULLs and extremes
// included (MySQL both with and without interpolated arguments, which send
// numbers as text or as binary).
func TestContractColumnTypes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, _ *counter) {
		types := map[string][]string{
			"sqlite":   {"INTEGER", "INTEGER", "INTEGER", "INTEGER", "INTEGER", "INTEGER", "REAL", "REAL", "TEXT", "BLOB", "DATETIME", "BOOLEAN", "TEXT", "INTEGER", "TEXT", "TEXT", "NUMERIC"},
			"mysql":    {"TINYINT", "SMALLINT", "INT", "BIGINT", "TINYINT UNSIGNED", "INT UNSIGNED", "FLOAT", "DOUBLE", "VARCHAR(64)", "BLOB", "DATETIME(6)", "BOOLEAN", "VARCHAR(64)", "BIGINT", "VARCHAR(64)", "VARCHAR(64)", "DECIMAL(10,2)"},
			"postgres": {"SMALLINT", "SMALLINT", "INTEGER", "BIGINT", "SMALLINT", "BIGINT", "REAL", "DOUBLE PRECISION", "TEXT", "BYTEA", "TIMESTAMPTZ", "BOOLEAN", "TEXT", "BIGINT", "TEXT", "TEXT", "NUMERIC(10,2)"},
		}[d.dialect]
		names := []string{"i8", "i16", "i32", "i64", "u8", "u32", "f32", "f64", "s", "b", "ts", "ok", "ps", "pi", "ns", "a", "d"}
		ddl := "CREATE TABLE col_types (id BIGINT PRIMARY KEY"
		for i, n := range names {
			ddl += ", " + n + " " + types[i]
		}
		mustExec(t, db, ddl+")")
		ins := d.q("INSERT INTO col_types (id, " + strings.Join(names, ", ") + ") VALUES (?" + strings.Repeat(", ?", len(names)) + ")")
		ts := time.Date(2026, 11, 27, 14, 3, 4, 5000, time.UTC)
		mustExec(t, db, ins, 1, 1, 2, 3, 4, 5, 6, 1.5, 2.25, "ann", []byte("x"), ts, true, "p", 7, "n", "a", "1.25")
		mustExec(t, db, ins, 2, -128, 32767, math.MinInt32, int64(math.MaxInt64), 127, 4294967, -0.5, 1e300, "héllo", []byte{0, 1, 2, 255}, ts.Add(time.Hour), false, nil, nil, nil, nil, "-12.34")
		mustExec(t, db, ins, 3, 0, 0, 0, 0, 0, 0, 0.0, 0.0, "", []byte{}, ts, false, "", 0, "", "42", "0")
		q := "SELECT id, " + strings.Join(names, ", ") + " FROM col_types ORDER BY id"

		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		var want []colTypes
		for rows.Next() {
			var c colTypes
			if err := rows.Scan(&c.ID, &c.I8, &c.I16, &c.I32, &c.I64, &c.U8, &c.U32, &c.F32, &c.F64, &c.S, &c.B, &c.TS, &c.OK, &c.PS, &c.PI, &c.NS, &c.A, &c.D); err != nil {
				t.Fatalf("hand-written Scan: %v", err)
			}
			want = append(want, c)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()

		rs, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		var got []colTypes
		if err := idmap.Bind(rs, &got); err != nil {
			t.Fatalf("Bind: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("Bind: %d rows; Scan: %d", len(got), len(want))
		}
		for i := range want {
			g, w := reflect.ValueOf(got[i]), reflect.ValueOf(want[i])
			for f := range g.NumField() {
				if !sameValue(g.Field(f), w.Field(f)) {
					t.Errorf("row %d, %s: Bind %#v; Scan %#v", i+1, g.Type().Field(f).Name, g.Field(f).Interface(), w.Field(f).Interface())
				}
			}
		}
	})
}
