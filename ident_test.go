package idmap

import (
	"database/sql"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"

	"github.com/go-idmap/idmap/classify"
)

func TestParseName(t *testing.T) {
	ok := []struct {
		in   string
		max  int
		want []string
	}{
		{"users", 3, []string{"users"}},
		{"public.users", 3, []string{"public", "users"}},
		{"db.public.users", 3, []string{"db", "public", "users"}},
		{`"Users"`, 3, []string{"Users"}},
		{`"my table"`, 3, []string{"my table"}},
		{`"a""b"`, 3, []string{`a"b`}},
		{"`a``b`", 3, []string{"a`b"}},
		{"`a\"b`", 3, []string{`a"b`}},
		{`[a"b]`, 3, []string{`a"b`}},
		{`"a.b"`, 1, []string{"a.b"}},
		{`"public"."users"`, 3, []string{"public", "users"}},
		{"[dbo].[users]", 3, []string{"dbo", "users"}},
		{"größe", 1, []string{"größe"}},
		{"col$1", 1, []string{"col$1"}},
		{"_x2", 1, []string{"_x2"}},
		{"2fa", 1, []string{"2fa"}},
	}
	for _, c := range ok {
		got, why := parseName(c.in, c.max)
		if why != "" || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseName(%q) = %q, %q; want %q", c.in, got, why, c.want)
		}
	}
	bad := []struct {
		in  string
		max int
	}{
		{"", 3}, {"a b", 3}, {"a.", 3}, {".a", 3}, {"a..b", 3}, {"a.b.c.d", 3}, {"a.b", 1},
		{`"t"; DROP TABLE other; --`, 3},
		{`"t" WHERE 0 = 1 UNION SELECT 7, secret FROM secrets --`, 3},
		{`"name" || (SELECT secret FROM secrets)`, 1},
		{`"t`, 3}, {`"t""`, 3}, {`""`, 3}, {"``", 3}, {"[]", 3}, {"[a", 3}, {"[a]]", 3},
		{`"a"b`, 3}, {`"a" `, 3}, {` a`, 3}, {"a-b", 3}, {"a;b", 3}, {"a--", 3}, {"a/*", 3},
		{"$a", 1}, {"a\x00", 1}, {"\"a\x00\"", 1}, {"\"a\nb\"", 1}, {"\"\xff\"", 1}, {"\xff", 1},
		{"'a'", 1}, {"a'", 1}, {"a`", 1}, {"a\"", 1},
	}
	for _, c := range bad {
		if got, why := parseName(c.in, c.max); why == "" {
			t.Errorf("parseName(%q) = %q; want refused", c.in, got)
		}
	}
}

func TestQuoteName(t *testing.T) {
	parts := []string{"a\"b", "c`d"}
	for d, want := range map[dialect]string{
		dialectSQLite:   "\"a\"\"b\".\"c`d\"",
		dialectPostgres: "\"a\"\"b\".\"c`d\"",
		dialectGeneric:  "\"a\"\"b\".\"c`d\"",
		dialectMySQL:    "`a\"b`.`c``d`",
	} {
		var b strings.Builder
		d.quoteName(&b, parts...)
		if b.String() != want {
			t.Errorf("%v: got %s; want %s", d, b.String(), want)
		}
	}
}

// fuzzRow is the type whose table and column names FuzzGeneratedSQL
// replaces.
type fuzzRow struct {
	ID int64  `db:"id"`
	A  string `db:"a"`
	B  string `db:"b"`
}

// authLog records what SQLite's authorizer is asked while on is set.
type authLog struct {
	mu   sync.Mutex
	on   bool       // protected by mu
	acts []authCall // protected by mu
}

type authCall struct {
	op         int
	a1, a2, a3 string
}

var (
	fuzzAuth     authLog
	fuzzAuthOnce sync.Once
)

// openAuthorized opens an in-memory SQLite database, one connection, whose
// authorizer records every action into fuzzAuth while it is on, and denies
// every action but reading.
func openAuthorized(t testing.TB) *sql.DB {
	fuzzAuthOnce.Do(func() {
		sql.Register("sqlite3-authorized", &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
			c.RegisterAuthorizer(func(op int, a1, a2, a3 string) int {
				fuzzAuth.mu.Lock()
				defer fuzzAuth.mu.Unlock()
				if !fuzzAuth.on {
					return sqlite3.SQLITE_OK
				}
				fuzzAuth.acts = append(fuzzAuth.acts, authCall{op, a1, a2, a3})
				if op != sqlite3.SQLITE_SELECT && op != sqlite3.SQLITE_READ {
					return sqlite3.SQLITE_DENY
				}
				return sqlite3.SQLITE_OK
			})
			return nil
		}})
	})
	db, err := sql.Open("sqlite3-authorized", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetMaxIdleConns(1)
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		"CREATE TABLE other (id INTEGER PRIMARY KEY, a TEXT, b TEXT)",
		"CREATE TABLE secrets (id INTEGER PRIMARY KEY, secret TEXT)",
		"INSERT INTO secrets VALUES (7, 'hunter2')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// checkRefused fails unless err is idmap's refusal of a model.
func checkRefused(t *testing.T, err error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "idmap: ") || !(errors.Is(err, ErrModel) || errors.Is(err, ErrNoTable)) {
		t.Fatalf("refusal %q: want an idmap: error matching ErrModel", err)
	}
}

// FuzzGeneratedSQL: for any table name and column names, the SQL that Get
// and GetMany build is refused with an idmap: error when the model is
// built, or is one SELECT that reads only that table's columns: on SQLite,
// the authorizer sees one SELECT and reads of that table only; for every
// dialect, the statement reader sees one read that writes nothing and
// calls nothing.
func FuzzGeneratedSQL(f *testing.F) {
	for _, s := range [][4]string{
		{"users", "id", "name", "email"},
		{"main.users", "id", "a", "b"},
		{`"my ""t"""`, `"i d"`, "`a``b`", "[c]"},
		{`"t"; DROP TABLE other; --`, "id", "a", "b"},
		{`"t" WHERE 0 = 1 UNION SELECT 7, secret FROM secrets --`, "id", "a", "b"},
		{"t", "id", `"name" || (SELECT secret FROM secrets)`, "b"},
		{"t", `"id" = 0 OR 1 --`, "a", "b"},
		{"`t`; DROP TABLE other", "id", "a", "b"},
		{"[t] UNION SELECT 1,2,3 FROM secrets", "id", "a", "b"},
		{"t/*", "id", "a", "*/b"},
		{"t\x00", "id", "a", "b"},
		{`"a WHERE "`, `"x WHERE "`, "a", "b"},
		{"temp.t", "id", "a", "b"},
		{"other", "id", "a", "b"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	db := openAuthorized(f)
	typ := reflect.TypeFor[fuzzRow]()
	f.Fuzz(func(t *testing.T, table, pk, a, b string) {
		m := buildModel(typ, &modelConfig{table: table})
		if m.err != nil {
			checkRefused(t, m.err)
			return
		}
		cols := []string{pk, a, b}
		for i := range m.fields {
			c, err := m.columnOf(m.fields[i].name, cols[i])
			if err != nil {
				checkRefused(t, err)
				return
			}
			cols[i] = c
			m.fields[i].column = c
		}
		get, _ := m.selectSQL(dialectSQLite)
		many, _ := m.selectManySQL(dialectSQLite, []any{int64(1), int64(2)})

		for _, d := range []dialect{dialectSQLite, dialectMySQL, dialectPostgres, dialectGeneric} {
			g, _ := m.selectSQL(d)
			mq, _ := m.selectManySQL(d, []any{int64(1), int64(2)})
			checkClassified(t, d, g, 1)
			checkClassified(t, d, mq, 2)
		}

		// Make the table, so that SQLite prepares the statements.
		var name strings.Builder
		dialectSQLite.quoteName(&name, m.tableName...)
		var ddl strings.Builder
		ddl.WriteString("CREATE TABLE " + name.String() + " (")
		dialectSQLite.quoteName(&ddl, cols[0])
		ddl.WriteString(" INTEGER PRIMARY KEY, ")
		dialectSQLite.quoteName(&ddl, cols[1])
		ddl.WriteString(", ")
		dialectSQLite.quoteName(&ddl, cols[2])
		ddl.WriteString(")")
		_, cerr := db.Exec(ddl.String())
		if cerr == nil {
			if _, err := db.Exec("INSERT INTO " + name.String() + " VALUES (1, 'x', 'y')"); err != nil {
				t.Fatalf("insert: %v", err)
			}
			defer func() {
				if _, err := db.Exec("DROP TABLE " + name.String()); err != nil {
					t.Fatalf("DROP TABLE %s: %v", name.String(), err)
				}
			}()
		}
		for q, args := range map[string][]any{get: {int64(1)}, many: {int64(1), int64(2)}} {
			fuzzAuth.mu.Lock()
			fuzzAuth.on, fuzzAuth.acts = true, nil
			fuzzAuth.mu.Unlock()
			rows, err := db.Query(q, args...)
			n := 0
			if err == nil {
				for rows.Next() {
					n++
				}
				err = rows.Close()
			}
			fuzzAuth.mu.Lock()
			acts := fuzzAuth.acts
			fuzzAuth.on, fuzzAuth.acts = false, nil
			fuzzAuth.mu.Unlock()
			if cerr == nil && (err != nil || n != 1) {
				t.Errorf("%s: %d rows, %v; want the one row of the table", q, n, err)
			}
			selects := 0
			for _, c := range acts {
				switch c.op {
				case sqlite3.SQLITE_SELECT:
					selects++
				case sqlite3.SQLITE_READ:
					if !equalFoldASCII(c.a1, m.tableName[len(m.tableName)-1]) {
						t.Errorf("%s reads table %q (database %q); want only %q", q, c.a1, c.a3, m.tableName[len(m.tableName)-1])
					}
					if len(m.tableName) == 2 && !equalFoldASCII(c.a3, m.tableName[0]) {
						t.Errorf("%s reads table %q of database %q; want %q", q, c.a1, c.a3, m.tableName[0])
					}
					// A column that does not exist reads no column (""):
					// SQLite takes a "…" that names no column for a string.
					if c.a2 != "" && !equalFoldASCII(c.a2, cols[0]) && !equalFoldASCII(c.a2, cols[1]) && !equalFoldASCII(c.a2, cols[2]) {
						t.Errorf("%s reads column %q of %q; want one of %q", q, c.a2, c.a1, cols)
					}
				default:
					t.Errorf("%s: authorizer asked for action %d (%q, %q, %q); want reads only", q, c.op, c.a1, c.a2, c.a3)
				}
			}
			if selects > 1 {
				t.Errorf("%s: %d SELECTs; want one statement", q, selects)
			}
		}
	})
}

// checkClassified fails unless the statement reader sees q as one read,
// with args arguments, that writes nothing and calls nothing.
func checkClassified(t *testing.T, d dialect, q string, args int) {
	t.Helper()
	cd := map[dialect]classify.Dialect{dialectSQLite: classify.SQLite, dialectMySQL: classify.MySQL, dialectPostgres: classify.Postgres, dialectGeneric: classify.Generic}[d]
	st := classify.Classify(cd, q)
	for _, c := range st.Calls {
		if c != "in" {
			t.Errorf("%v: %s calls %q", d, q, c)
		}
	}
	if !st.Read || st.WholeDB || len(st.Writes) > 0 || len(st.Schema) > 0 || len(st.Tx) > 0 || st.Args != args {
		t.Errorf("%v: %s classified as %+v; want one read with %d arguments", d, q, st, args)
	}
}

// The SQL for hostile but valid names runs on the servers as one SELECT of
// that table: MySQL with multiple statements allowed, PostgreSQL.
func TestGeneratedSQLOnServers(t *testing.T) {
	names := [][4]string{ // table, key, two columns
		{`"Order Items"`, `"Item Id"`, "`a``b`", `[c"d]`},
		{"`tab\"le`", `"x""y"`, "größe", "col$1"},
		{`"sel.ect"`, `"from"`, `"where"`, `"--x"`},
		{`"t; DROP TABLE other; --"`, `"id"" OR 1=1 --"`, `"/*"`, `"*/"`},
		{"`t`` WHERE 0 = 1 UNION SELECT 7, secret FROM secrets -- x`", `"'"`, `"\"`, `"$1"`},
	}
	type server struct {
		name string
		d    dialect
		open func(t *testing.T) *sql.DB
	}
	var servers []server
	if dsn := os.Getenv("IDMAP_MYSQL_DSN"); dsn != "" {
		servers = append(servers, server{"MySQL", dialectMySQL, func(t *testing.T) *sql.DB {
			cfg := MySQLTestDatabase(t, dsn, "idmap_ident"+runID)
			cfg.MultiStatements = true
			db, err := sql.Open("mysql", cfg.FormatDSN())
			if err != nil {
				t.Fatal(err)
			}
			return db
		}})
	}
	if dsn := os.Getenv("IDMAP_PG_DSN"); dsn != "" {
		servers = append(servers, server{"Postgres", dialectPostgres, func(t *testing.T) *sql.DB {
			db, err := sql.Open("pgx", PostgresTestSchema(t, dsn, "idmap_ident"+runID))
			if err != nil {
				t.Fatal(err)
			}
			return db
		}})
	}
	if len(servers) == 0 {
		t.Skip("servers skipped: set IDMAP_MYSQL_DSN / IDMAP_PG_DSN")
	}
	typ := reflect.TypeFor[fuzzRow]()
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			db := s.open(t)
			defer db.Close()
			for _, q := range []string{
				"CREATE TABLE other (id INTEGER PRIMARY KEY)",
				"CREATE TABLE secrets (id INTEGER PRIMARY KEY, secret VARCHAR(20))",
				"INSERT INTO secrets VALUES (7, 'hunter2')",
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range names {
				m := buildModel(typ, &modelConfig{table: n[0]})
				if m.err != nil {
					t.Fatalf("%q: %v", n[0], m.err)
				}
				for i := range m.fields {
					c, err := m.columnOf(m.fields[i].name, n[i+1])
					if err != nil {
						t.Fatalf("%q: %v", n[i+1], err)
					}
					m.fields[i].column = c
				}
				var table, cols strings.Builder
				s.d.quoteName(&table, m.tableName...)
				for i := range m.fields {
					if i > 0 {
						cols.WriteString(", ")
					}
					s.d.quoteName(&cols, m.fields[i].column)
					cols.WriteString([]string{" INTEGER PRIMARY KEY", " VARCHAR(20)", " VARCHAR(20)"}[i])
				}
				if _, err := db.Exec("CREATE TABLE " + table.String() + " (" + cols.String() + ")"); err != nil {
					t.Fatalf("%s: %v", table.String(), err)
				}
				if _, err := db.Exec("INSERT INTO " + table.String() + " VALUES (7, 'x', 'y')"); err != nil {
					t.Fatal(err)
				}
				get, _ := m.selectSQL(s.d)
				many, _ := m.selectManySQL(s.d, []any{int64(7), int64(8)})
				for q, args := range map[string][]any{get: {int64(7)}, many: {int64(7), int64(8)}} {
					rows, err := db.Query(q, args...)
					if err != nil {
						t.Fatalf("%s: %v", q, err)
					}
					var got [][3]string
					for rows.Next() {
						var r [3]string
						if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
							t.Fatal(err)
						}
						got = append(got, r)
					}
					if err := rows.Close(); err != nil {
						t.Fatal(err)
					}
					if len(got) != 1 || got[0] != [3]string{"7", "x", "y"} {
						t.Errorf("%s: got %q; want the one row [7 x y]", q, got)
					}
				}
				if _, err := db.Exec("DROP TABLE " + table.String()); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := db.QueryRow("SELECT COUNT(*) FROM other").Scan(&n); err != nil {
					t.Fatalf("table other: %v", err)
				}
			}
		})
	}
}
