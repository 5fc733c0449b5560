package idmap_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// Key values as the server reads them: a write that names a key in a
// spelling the server reads as another value (numbers as text, times, UUIDs,
// collations) expires that key, or its table. Never under-invalidate.

// Code is keyed by a string column.
type Code struct {
	Code string `db:"code,pk"`
	Note string `db:"note"`
}

func (Code) TableName() string { return "codes" }

// MySQL compares a string column with a number as numbers: WHERE code = 5
// matches '5', '05', '5abc' and '5.0'. A write keyed so expires the table,
// not the key 5; a string argument compares as text and keeps its key.
// Elsewhere a number is compared as text, or not at all.
func TestContractStringKeyNumberArg(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		mustExec(t, db, "CREATE TABLE codes (code VARCHAR(20) PRIMARY KEY, note VARCHAR(20) NOT NULL)")
		for _, c := range []string{"5", "5abc", "5.0", "x"} {
			mustExec(t, db, d.q("INSERT INTO codes (code, note) VALUES (?, ?)"), c, "old")
		}
		ctx := idmap.NewContext(context.Background())
		rows, err := db.QueryContext(ctx, "SELECT code, note FROM codes")
		require.NoError(t, err)
		var all []*Code
		require.NoError(t, idmap.Bind(rows, &all))
		require.Len(t, all, 4)

		upd := d.q("UPDATE codes SET note = 'new' WHERE code = ?")
		if d.dialect == "postgres" {
			upd = "UPDATE codes SET note = 'new' WHERE code = $1::int::text"
		}
		conn, err := db.Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		if d.dialect == "mysql" {
			// Strict mode refuses '5abc' as a number in an UPDATE; a server
			// that is not strict updates it.
			_, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ''")
			require.NoError(t, err)
		}
		for _, arg := range []any{5, 5.0} {
			// Load every row again, then write.
			rows, err := db.QueryContext(ctx, "SELECT code, note FROM codes")
			require.NoError(t, err)
			require.NoError(t, idmap.Bind(rows, &all))
			if _, err := conn.ExecContext(ctx, strings.Replace(upd, "'new'", fmt.Sprintf("'new %v'", arg), 1), arg); err != nil {
				t.Logf("%s does not compare a string column with %T: %v", d.name, arg, err)
				continue
			}
			for _, c := range []string{"5", "5abc", "5.0", "x"} {
				got, err := idmap.Get[Code](ctx, db, c)
				require.NoError(t, err)
				var note string
				require.NoError(t, db.QueryRow(d.q("SELECT note FROM codes WHERE code = ?"), c).Scan(&note))
				require.Equal(t, note, got.Note, "%s: stale row %q after WHERE code = %T(%v)", d.name, c, arg, arg)
			}
		}
	})
}

// A key given as text that the server reads as a number ('5.0', '5e0',
// ' 5 ') matches the row whose integer key is 5 on SQLite and MySQL: the
// write expires that key, or the table.
func TestContractNumericText(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 6)
		ctx := idmap.NewContext(context.Background())
		for i, arg := range []string{"5.0", "5e0", " 4 ", "3.", "+2", "1.0e0", "literal 6.0"} {
			_ = queryUsers(t, ctx, db, "SELECT id, name, email FROM users ORDER BY id")
			name := fmt.Sprintf("n%d", i)
			var err error
			if lit, ok := strings.CutPrefix(arg, "literal "); ok {
				_, err = db.ExecContext(ctx, "UPDATE users SET name = '"+name+"' WHERE id = '"+lit+"'")
			} else {
				_, err = db.ExecContext(ctx, d.q("UPDATE users SET name = ? WHERE id = ?"), name, arg)
			}
			if err != nil {
				continue // PostgreSQL refuses '5.0' as a bigint
			}
			for id := int64(1); id <= 6; id++ {
				u, err := idmap.Get[User](ctx, db, id)
				require.NoError(t, err)
				var want string
				require.NoError(t, db.QueryRow(d.q("SELECT name FROM users WHERE id = ?"), id).Scan(&want))
				require.Equal(t, want, u.Name, "%s: stale row %d after WHERE id = %q", d.name, id, arg)
			}
		}
	})
}

// Visit is keyed by a user and a day.
type Visit struct {
	UserID int64     `db:"user_id,pk"`
	Day    time.Time `db:"day,pk"`
	N      int64     `db:"n"`
}

func (Visit) TableName() string { return "visits" }

// A time key given as text ('2026-11-27') matches the row whose key is
// that time: the write expires it, or the table.
func TestContractTimeKeyText(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		typ := map[string]string{"sqlite": "DATETIME", "mysql": "DATETIME", "postgres": "TIMESTAMP"}[d.dialect]
		mustExec(t, db, "CREATE TABLE visits (user_id BIGINT, day "+typ+", n BIGINT NOT NULL, PRIMARY KEY (user_id, day))")
		day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		mustExec(t, db, d.q("INSERT INTO visits (user_id, day, n) VALUES (?, ?, ?)"), 1, day, 1)
		ctx := idmap.NewContext(context.Background())
		rows, err := db.QueryContext(ctx, "SELECT user_id, day, n FROM visits")
		require.NoError(t, err)
		var vs []*Visit
		require.NoError(t, idmap.Bind(rows, &vs))
		require.Len(t, vs, 1)

		text := day.Format("2006-01-02 15:04:05")
		if d.dialect == "sqlite" {
			var stored string
			require.NoError(t, db.QueryRow("SELECT CAST(day AS TEXT) FROM visits").Scan(&stored))
			text = stored // the text SQLite compares with
		}
		res, err := db.ExecContext(ctx, d.q("UPDATE visits SET n = n + 1 WHERE user_id = ? AND day = ?"), 1, text)
		require.NoError(t, err)
		if n, _ := res.RowsAffected(); n != 1 {
			t.Skipf("%s: WHERE day = %q matched %d rows", d.name, text, n)
		}
		got, err := idmap.Get[Visit](ctx, db, 1, day)
		require.NoError(t, err)
		require.Equal(t, int64(2), got.N, "%s: stale row after WHERE day = %q", d.name, text)
	})
}

// TenantItem is keyed by a tenant (text) and a number.
type TenantItem struct {
	Tenant string `db:"tenant,pk"`
	ID     int64  `db:"id,pk"`
	Name   string `db:"name"`
}

func (TenantItem) TableName() string { return "tenant_items" }

// The rules for text and time key columns hold per column: a write keyed by
// tenant and number expires that key alone (but on MySQL, whose collations
// compare text in ways idmap does not follow: there, the table).
func TestContractMixedKeyPrecision(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		mustExec(t, db, "CREATE TABLE tenant_items (tenant VARCHAR(20), id BIGINT, name VARCHAR(20) NOT NULL, PRIMARY KEY (tenant, id))")
		mustExec(t, db, d.q("INSERT INTO tenant_items (tenant, id, name) VALUES (?, ?, ?), (?, ?, ?)"), "acme", 1, "a", "acme", 2, "b")
		ctx := idmap.NewContext(context.Background())
		rows, err := db.QueryContext(ctx, "SELECT tenant, id, name FROM tenant_items")
		require.NoError(t, err)
		var all []*TenantItem
		require.NoError(t, idmap.Bind(rows, &all))
		mustExec(t, db, d.q("UPDATE tenant_items SET name = ? WHERE tenant = ? AND id = ?"), "c", "acme", 2)
		if d.dialect != "mysql" { // MySQL's collations: a text key widens there
			require.NotNil(t, idmap.Cached[TenantItem](ctx, db, "acme", 1), "%s: the other key was expired too", d.name)
		}
		require.Nil(t, idmap.Cached[TenantItem](ctx, db, "acme", 2), "%s: the written key is still fresh", d.name)
	})
}

// Literal keys as the server reads them: signs, hexadecimal and bit
// literals, exponents, booleans.
func TestContractLiteralKeys(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		for _, id := range []int{-1, 16, 0} {
			mustExec(t, db, d.q("INSERT INTO users (id, name) VALUES (?, ?)"), id, fmt.Sprintf("user%d", id))
		}
		stmts := []string{
			"UPDATE users SET name = 'l1' WHERE id = -1",
			"UPDATE users SET name = 'l2' WHERE id = - 1",
			"UPDATE users SET name = 'l3' WHERE id = +2",
			"UPDATE users SET name = 'l4' WHERE id = 1e0",
			"UPDATE users SET name = 'l5' WHERE id = 2.0",
			"UPDATE users SET name = 'l6' WHERE id = -(-3)",
			"UPDATE users SET name = 'l7' WHERE id = TRUE",
			"UPDATE users SET name = 'l8' WHERE id = FALSE",
			"UPDATE users SET name = 'l9' WHERE id = 0x10",
			"UPDATE users SET name = 'l10' WHERE id = 1_6",
			"UPDATE users SET name = 'l11' WHERE id = 0b11",
			"UPDATE users SET name = 'l12' WHERE id = b'11'",
			"UPDATE users SET name = 'l13' WHERE id = X'10'",
			"UPDATE users SET name = 'l14' WHERE id = 16.",
			"UPDATE users SET name = 'l15' WHERE id = .16e2",
			"UPDATE users SET name = 'l16' WHERE id = 0o20",
			"UPDATE users SET name = 'l17' WHERE id = 00016",
		}
		ctx := idmap.NewContext(context.Background())
		writeEach(t, ctx, db, d, stmts, nil, -1, 0, 1, 2, 3, 16)
	})
}

// A time key given as a time.Time in another zone: whichever row the
// server matches, it is not served stale.
func TestContractTimeKeyZones(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		typ := map[string]string{"sqlite": "DATETIME", "mysql": "DATETIME", "postgres": "TIMESTAMP"}[d.dialect]
		mustExec(t, db, "CREATE TABLE visits (user_id BIGINT, day "+typ+", n BIGINT NOT NULL, PRIMARY KEY (user_id, day))")
		day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		mustExec(t, db, d.q("INSERT INTO visits (user_id, day, n) VALUES (?, ?, ?)"), 1, day, 1)
		ctx := idmap.NewContext(context.Background())
		plus5 := time.FixedZone("+05", 5*3600)
		for i, arg := range []time.Time{day.In(plus5), time.Date(2026, 11, 27, 0, 0, 0, 0, plus5)} {
			rows, err := db.QueryContext(ctx, "SELECT user_id, day, n FROM visits")
			require.NoError(t, err)
			var vs []*Visit
			require.NoError(t, idmap.Bind(rows, &vs))
			_, err = db.ExecContext(ctx, d.q("UPDATE visits SET n = n + 1 WHERE user_id = ? AND day = ?"), 1, arg)
			require.NoError(t, err)
			var n int64
			require.NoError(t, db.QueryRow(d.q("SELECT n FROM visits WHERE user_id = ?"), 1).Scan(&n))
			got, err := idmap.Get[Visit](ctx, db, 1, vs[0].Day)
			require.NoError(t, err)
			require.Equal(t, n, got.N, "%s: stale row after WHERE day = %v (case %d)", d.name, arg, i)
		}
	})
}

// Account is keyed by a UUID held as text.
type Account struct {
	ID   string `db:"id,pk"`
	Name string `db:"name"`
}

func (Account) TableName() string { return "accounts" }

// PostgreSQL reads a uuid in several spellings (upper case, braces, no
// hyphens): a write that names the key in any of them expires it.
func TestContractUUIDSpellings(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "postgres" {
			t.Skip("the uuid type: PostgreSQL")
		}
		mustExec(t, db, "CREATE TABLE accounts (id UUID PRIMARY KEY, name TEXT NOT NULL)")
		const id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
		mustExec(t, db, "INSERT INTO accounts (id, name) VALUES ($1, 'a')", id)
		ctx := idmap.NewContext(context.Background())
		for i, spelling := range []string{strings.ToUpper(id), "{" + id + "}", strings.ReplaceAll(id, "-", ""), "a0eebc999c0b4ef8bb6d6bb9bd380a11"[:4] + "-" + "a0eebc999c0b4ef8bb6d6bb9bd380a11"[4:]} {
			rows, err := db.QueryContext(ctx, "SELECT id, name FROM accounts")
			require.NoError(t, err)
			var as []*Account
			require.NoError(t, idmap.Bind(rows, &as))
			name := fmt.Sprintf("n%d", i)
			res, err := db.ExecContext(ctx, "UPDATE accounts SET name = $1 WHERE id = $2", name, spelling)
			require.NoError(t, err)
			if n, _ := res.RowsAffected(); n != 1 {
				t.Logf("%q matched %d rows", spelling, n)
				continue
			}
			got, err := idmap.Get[Account](ctx, db, id)
			require.NoError(t, err)
			require.Equal(t, name, got.Name, "%s: stale row after WHERE id = %q", d.name, spelling)
		}
	})
}

// CICode is keyed by text under an accent- and case-insensitive
// (nondeterministic) collation on PostgreSQL.
type CICode struct {
	CICode string `db:"code,pk"`
	Name   string `db:"name"`
}

func (CICode) TableName() string { return "rdr_codes" }

// Text keys under a nondeterministic collation widen to the table: WHERE
// code = 'Café' writes the row whose key is 'cafe'.
func TestContractNondeterministicCollation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		if d.dialect != "postgres" {
			t.Skip("nondeterministic collations: PostgreSQL")
		}
		mustExec(t, db, "CREATE COLLATION rdr_ci (provider = icu, locale = 'und-u-ks-level1', deterministic = false)")
		mustExec(t, db, "CREATE TABLE rdr_codes (code TEXT COLLATE rdr_ci PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO rdr_codes VALUES ('cafe', 'a'), ('xyz', 'x')")
		ctx := idmap.NewContext(context.Background())
		c, err := idmap.Get[CICode](ctx, db, "cafe")
		require.NoError(t, err)
		require.Equal(t, "a", c.Name)
		mustExec(t, db, "UPDATE rdr_codes SET name = 'b' WHERE code = $1", "Café")
		c, err = idmap.Get[CICode](ctx, db, "cafe")
		require.NoError(t, err)
		require.Equal(t, "b", c.Name, "stale row after a write by a key spelled with an accent")
	})
}
