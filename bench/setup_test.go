package bench

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap"
)

// User is the row every benchmark loads: five columns, the usual mix.
type User struct {
	ID        int64     `db:"id"`
	Name      string    `db:"name"`
	Email     string    `db:"email"`
	Age       int       `db:"age"`
	CreatedAt time.Time `db:"created_at"`
}

func (User) TableName() string { return "bench_users" }

const (
	nRows     = 1000 // rows in bench_users
	selectLen = 100  // rows that the Select100 query returns
	cols      = "id, name, email, age, created_at"
)

var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// backend is one database, opened twice on the same data: through the plain
// base driver and through idmap.
type backend struct {
	name    string // in benchmark names: SQLiteMem, SQLiteWAL, MySQL, Postgres
	dialect string // sqlite, mysql, postgres
	base    string // the base driver's name
	dsn     string
	skip    string // why this backend does not run, or ""

	once  sync.Once
	err   error
	plain *sql.DB
	null  *sql.DB // the plain driver behind sqlmw with a NullInterceptor: sqlmw's own cost
	idm   *sql.DB
	sqlx  *sqlx.DB
	keep  *sql.Conn // keeps an in-memory database alive
}

// q rewrites "?" placeholders for the dialect.
func (be *backend) q(s string) string {
	if be.dialect != "postgres" {
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

// idmapName is the name of the backend's idmap database.
func (be *backend) idmapName() string { return "bench-" + be.name }

var (
	tmpDir     string
	tmpDirOnce sync.Once
)

func benchDir() string {
	tmpDirOnce.Do(func() {
		d, err := os.MkdirTemp("", "idmap-bench-")
		if err != nil {
			panic(err)
		}
		tmpDir = d
	})
	return tmpDir
}

var backends = func() []*backend {
	bs := []*backend{
		{name: "SQLiteMem", dialect: "sqlite", base: "sqlite3", dsn: "file:/idmap-bench?vfs=memdb"},
		{name: "SQLiteWAL", dialect: "sqlite", base: "sqlite3"},
	}
	my := &backend{name: "MySQL", dialect: "mysql", base: "mysql", dsn: os.Getenv("IDMAP_MYSQL_DSN")}
	if my.dsn == "" {
		my.skip = "IDMAP_MYSQL_DSN is not set: MySQL/MariaDB skipped"
	}
	pg := &backend{name: "Postgres", dialect: "postgres", base: "pgx", dsn: os.Getenv("IDMAP_PG_DSN")}
	if pg.dsn == "" {
		pg.skip = "IDMAP_PG_DSN is not set: PostgreSQL skipped"
	}
	return append(bs, my, pg)
}()

func backendNamed(name string) *backend {
	for _, be := range backends {
		if be.name == name {
			return be
		}
	}
	panic("no backend " + name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, be := range backends {
		be.close()
	}
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// forEach runs fn as a sub-benchmark (or subtest) per backend, opened and
// filled on first use; a backend without its DSN is skipped with a message.
func forEach[T interface {
	testing.TB
	Run(string, func(T)) bool
}](t T, fn func(T, *backend)) {
	for _, be := range backends {
		t.Run(be.name, func(t T) {
			if be.skip != "" {
				t.Skip(be.skip)
			}
			if err := be.open(); err != nil {
				t.Fatalf("%s: %v", be.name, err)
			}
			fn(t, be)
		})
	}
}

func (be *backend) open() error {
	be.once.Do(func() { be.err = be.doOpen() })
	return be.err
}

func (be *backend) doOpen() error {
	ctx := context.Background()
	dsn := be.dsn
	switch be.name {
	case "SQLiteWAL":
		dsn = "file:" + filepath.Join(benchDir(), "bench.db") + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000"
	case "MySQL":
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return err
		}
		cfg.ParseTime = true // created_at scans into a time.Time
		dsn = cfg.FormatDSN()
	}
	var err error
	if be.plain, err = sql.Open(be.base, dsn); err != nil {
		return err
	}
	if be.name == "SQLiteMem" {
		// The memdb database lives while a connection to it is open.
		if be.keep, err = be.plain.Conn(ctx); err != nil {
			return err
		}
	}
	if err := be.fill(ctx); err != nil {
		return err
	}
	if be.idm, err = idmap.Open(be.base, dsn, idmap.Name(be.idmapName())); err != nil {
		return err
	}
	if be.null, err = sql.Open(nullDriver(be.base, be.plain.Driver()), dsn); err != nil {
		return err
	}
	be.sqlx = sqlx.NewDb(be.plain, be.base)
	// Warm the pools and idmap's per-type and per-statement caches.
	for _, db := range []*sql.DB{be.plain, be.null, be.idm} {
		var u User
		if err := db.QueryRowContext(ctx, be.q("SELECT "+cols+" FROM bench_users WHERE id = ?"), 1).
			Scan(&u.ID, &u.Name, &u.Email, &u.Age, &u.CreatedAt); err != nil {
			return err
		}
	}
	return nil
}

var (
	nullMu      sync.Mutex
	nullDrivers = map[string]string{} // base driver → its sqlmw-null driver's name
)

// nullDriver registers, once per base driver, the base driver behind sqlmw
// with a NullInterceptor, and returns its name.
func nullDriver(base string, d driver.Driver) string {
	nullMu.Lock()
	defer nullMu.Unlock()
	name, ok := nullDrivers[base]
	if !ok {
		name = "sqlmw-null+" + base
		sql.Register(name, sqlmw.Driver(d, sqlmw.NullInterceptor{}))
		nullDrivers[base] = name
	}
	return name
}

// fill (re)creates bench_users with nRows rows, through the plain driver.
func (be *backend) fill(ctx context.Context) error {
	ts := "DATETIME"
	switch be.dialect {
	case "mysql":
		ts = "DATETIME(6)"
	case "postgres":
		ts = "TIMESTAMPTZ"
	}
	stmts := []string{
		"DROP TABLE IF EXISTS bench_users",
		"CREATE TABLE bench_users (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128) NOT NULL, age INT NOT NULL, created_at " + ts + " NOT NULL)",
	}
	for _, s := range stmts {
		if _, err := be.plain.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	tx, err := be.plain.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins := be.q("INSERT INTO bench_users (" + cols + ") VALUES (?, ?, ?, ?, ?)")
	for i := 1; i <= nRows; i++ {
		u := sampleUser(int64(i))
		if _, err := tx.ExecContext(ctx, ins, u.ID, u.Name, u.Email, u.Age, u.CreatedAt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func sampleUser(id int64) User {
	return User{
		ID:        id,
		Name:      fmt.Sprintf("user %04d", id),
		Email:     fmt.Sprintf("user%04d@example.com", id),
		Age:       20 + int(id%50),
		CreatedAt: baseTime.Add(time.Duration(id) * time.Minute),
	}
}

func (be *backend) close() {
	if be.keep != nil {
		be.keep.Close()
	}
	if be.idm != nil {
		be.idm.Close()
	}
	if be.null != nil {
		be.null.Close()
	}
	if be.plain != nil {
		if be.dialect != "sqlite" {
			be.plain.ExecContext(context.Background(), "DROP TABLE IF EXISTS bench_users")
		}
		be.plain.Close()
	}
}
