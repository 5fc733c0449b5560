package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"
	"github.com/ngrok/sqlmw"
	_ "modernc.org/sqlite"

	"github.com/go-idmap/idmap"
)

// The driver matrix: the tests that define the contract run against every
// base driver. Server drivers run when IDMAP_MYSQL_DSN / IDMAP_PG_DSN are
// set, and say they are skipped otherwise. Each test gets a database of its
// own (a file, a MySQL database, a PostgreSQL schema).

type testDriver struct {
	name    string // in test names: SQLite, SQLiteModernc, MySQL, MySQLInterpolate, Postgres, PostgresConnector
	dialect string
	// open returns a new empty database through idmap, and a counter of
	// the statements that reach the base driver.
	open func(t *testing.T) (*sql.DB, *counter)
}

// q rewrites "?" placeholders for the dialect.
func (d *testDriver) q(s string) string {
	if d.dialect != "postgres" {
		return s
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// upsert returns an upsert of users(id, name) for the dialect.
func (d *testDriver) upsert() string {
	switch d.dialect {
	case "mysql":
		return "INSERT INTO users (id, name) VALUES (?, ?) ON DUPLICATE KEY UPDATE name = VALUES(name)"
	case "postgres":
		return "INSERT INTO users (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name"
	}
	return "INSERT INTO users (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name"
}

var dbSeq atomic.Int64

// countingConnector counts the statements that reach c's connections.
type countingConnector struct {
	c   driver.Connector
	cnt *counter
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	bc, err := cc.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return sqlmw.Driver(oneConnDriver{bc}, cc.cnt).Open("")
}
func (cc countingConnector) Driver() driver.Driver { return cc.c.Driver() }

type oneConnDriver struct{ c driver.Conn }

func (o oneConnDriver) Open(string) (driver.Conn, error) { return o.c, nil }

// registerCounted registers base behind a counting sqlmw wrapper and
// returns the name to open "idmap+"+name with.
func registerCounted(prefix string, base driver.Driver, c *counter) string {
	name := fmt.Sprintf("%s-matrix-%d", prefix, dbSeq.Add(1)) // the prefix tells idmap the dialect
	sql.Register(name, sqlmw.Driver(base, c))
	idmap.Register(name)
	return name
}

func testDrivers() []*testDriver {
	ds := []*testDriver{
		{name: "SQLite", dialect: "sqlite", open: func(t *testing.T) (*sql.DB, *counter) {
			c := &counter{}
			name := registerCounted("sqlite3", &sqlite3.SQLiteDriver{}, c)
			dsn := sqliteDSN(t, "t.db")
			db, err := sql.Open("idmap+"+name, dsn)
			if err != nil {
				t.Fatal(err)
			}
			return db, c
		}},
		{name: "SQLiteModernc", dialect: "sqlite", open: func(t *testing.T) (*sql.DB, *counter) {
			c := &counter{}
			probe, _ := sql.Open("sqlite", ":memory:")
			base := probe.Driver()
			probe.Close()
			name := registerCounted("sqlite", base, c)
			dsn := "file:" + filepath.Join(t.TempDir(), "t.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
			db, err := idmap.Open(name, dsn, idmap.Dialect("sqlite"))
			if err != nil {
				t.Fatal(err)
			}
			return db, c
		}},
	}
	if dsn := os.Getenv("IDMAP_MYSQL_DSN"); dsn != "" {
		for _, interpolate := range []bool{false, true} {
			name := "MySQL"
			if interpolate {
				name = "MySQLInterpolate"
			}
			ds = append(ds, &testDriver{name: name, dialect: "mysql", open: func(t *testing.T) (*sql.DB, *counter) {
				dbName := fmt.Sprintf("idmap_t%s_%d", idmap.RunID, dbSeq.Add(1))
				cfg := idmap.MySQLTestDatabase(t, dsn, dbName)
				cfg.InterpolateParams = interpolate
				cfg.MultiStatements = true
				c := &counter{}
				mc, err := mysql.NewConnector(cfg)
				if err != nil {
					t.Fatal(err)
				}
				db := sql.OpenDB(idmap.NewConnector(countingConnector{mc, c}, idmap.Name("mysql/"+dbName), idmap.Dialect("mysql")))
				return db, c
			}})
		}
	}
	if dsn := os.Getenv("IDMAP_PG_DSN"); dsn != "" {
		for _, viaConnector := range []bool{false, true} {
			name := "Postgres"
			if viaConnector {
				name = "PostgresConnector"
			}
			ds = append(ds, &testDriver{name: name, dialect: "postgres", open: func(t *testing.T) (*sql.DB, *counter) {
				schema := fmt.Sprintf("idmap_t%s_%d", idmap.RunID, dbSeq.Add(1))
				sdsn := idmap.PostgresTestSchema(t, dsn, schema)
				c := &counter{}
				if !viaConnector {
					n := registerCounted("pgx", stdlib.GetDefaultDriver(), c)
					db, err := sql.Open("idmap+"+n, sdsn)
					if err != nil {
						t.Fatal(err)
					}
					return db, c
				}
				cfg, err := pgx.ParseConfig(sdsn)
				if err != nil {
					t.Fatal(err)
				}
				db := sql.OpenDB(idmap.NewConnector(countingConnector{stdlib.GetConnector(*cfg), c}, idmap.Name("pg/"+schema)))
				return db, c
			}})
		}
	}
	return ds
}

// forEachDriver runs f once per base driver, as subtests named after it.
func forEachDriver(t *testing.T, f func(t *testing.T, d *testDriver, db *sql.DB, count *counter)) {
	if os.Getenv("IDMAP_MYSQL_DSN") == "" {
		t.Log("MySQL tests skipped: IDMAP_MYSQL_DSN is not set")
	}
	if os.Getenv("IDMAP_PG_DSN") == "" {
		t.Log("Postgres tests skipped: IDMAP_PG_DSN is not set")
	}
	for _, d := range testDrivers() {
		t.Run(d.name, func(t *testing.T) {
			db, count := d.open(t)
			t.Cleanup(func() { db.Close() })
			f(t, d, db, count)
		})
	}
}

func TestServersSkipped(t *testing.T) {
	if os.Getenv("IDMAP_MYSQL_DSN") == "" {
		t.Run("MySQL", func(t *testing.T) { t.Skip("MySQL tests skipped: set IDMAP_MYSQL_DSN (scripts/start-servers.sh)") })
	}
	if os.Getenv("IDMAP_PG_DSN") == "" {
		t.Run("Postgres", func(t *testing.T) { t.Skip("Postgres tests skipped: set IDMAP_PG_DSN (scripts/start-servers.sh)") })
	}
}

// seed creates users and posts (posts.user_id → users.id ON DELETE
// CASCADE) with n users, one post each.
func (d *testDriver) seed(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	mustExec(t, db, "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(100) NOT NULL DEFAULT '')")
	mustExec(t, db, "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title VARCHAR(100), FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE)")
	for i := 1; i <= n; i++ {
		mustExec(t, db, d.q("INSERT INTO users (id, name, email) VALUES (?, ?, ?)"), i, fmt.Sprintf("user%d", i), fmt.Sprintf("u%d@example.com", i))
		mustExec(t, db, d.q("INSERT INTO posts (id, user_id, title) VALUES (?, ?, ?)"), i, i, fmt.Sprintf("post%d", i))
	}
}

type driverConn = driver.Conn

// execBase runs a statement on a base driver connection.
func execBase(bc driver.Conn, query string, args ...any) (driver.Result, error) {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, err
		}
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	if ex, ok := bc.(driver.ExecerContext); ok {
		res, err := ex.ExecContext(context.Background(), query, named)
		if err != driver.ErrSkip {
			return res, err
		}
	}
	st, err := bc.Prepare(query)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.(driver.StmtExecContext).ExecContext(context.Background(), named)
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

// replaceHost returns a URL DSN with its host:port replaced.
func replaceHost(dsn, hostport string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = hostport
	return u.String()
}
