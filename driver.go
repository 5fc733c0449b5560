package idmap

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"

	"github.com/go-idmap/idmap/classify"
	"github.com/ngrok/sqlmw"
)

// The drivers registered at init. Each resolves the base driver of the same
// name when a database is opened, so importing idmap pulls in no driver.
func init() {
	for _, base := range []string{"sqlite3", "sqlite", "mysql", "pgx", "postgres"} {
		Register(base)
	}
}

// baseImports names the import that registers each well-known base driver,
// for the error that says it is missing.
var baseImports = map[string]string{
	"sqlite3":  "github.com/mattn/go-sqlite3",
	"sqlite":   "modernc.org/sqlite",
	"mysql":    "github.com/go-sql-driver/mysql",
	"pgx":      "github.com/jackc/pgx/v5/stdlib",
	"postgres": "github.com/lib/pq",
}

// driverPrefix begins the name of every driver that Register registers.
const driverPrefix = "idmap+"

// registered holds the names that Register has registered with database/sql,
// which panics on a second registration of one name.
var registered struct {
	mu    sync.Mutex
	names map[string]bool // protected by mu
}

// Register registers the driver "idmap+"+base with database/sql and returns
// that name. The base driver is looked up by name when a database is opened,
// so it may be registered later. Register is idempotent.
func Register(base string) string {
	name := driverPrefix + base
	registered.mu.Lock()
	defer registered.mu.Unlock()
	if registered.names[name] {
		return name
	}
	for _, d := range sql.Drivers() {
		if d == name {
			return name // registered by someone else; leave it
		}
	}
	sql.Register(name, &regDriver{base: base})
	if registered.names == nil {
		registered.names = make(map[string]bool)
	}
	registered.names[name] = true
	return name
}

// Open opens a database through idmap on the base driver registered as base,
// like sql.Open: it checks its arguments and does not connect. A base that
// is itself an idmap driver ("idmap+sqlite3") is unwrapped to its own base
// ("sqlite3"): idmap is never stacked on idmap. The same holds for
// sql.Open("idmap+idmap+sqlite3", …) and the names Register("idmap+x")
// returns.
func Open(base, dsn string, opts ...Option) (*sql.DB, error) {
	c, err := openConnector(base, dsn, opts)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// regDriver is what "idmap+base" is registered as.
type regDriver struct{ base string }

var (
	_ driver.Driver        = (*regDriver)(nil)
	_ driver.DriverContext = (*regDriver)(nil)
)

// Open is driver.Driver's, for a caller that opens a connection of the
// registered driver itself (database/sql uses OpenConnector): it makes a
// connector for dsn and connects once.
func (d *regDriver) Open(dsn string) (driver.Conn, error) {
	c, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

// OpenConnector is driver.DriverContext's, which database/sql prefers: the
// connector checks dsn and resolves the base driver once, not at every
// connection. A database opened by name has the default options.
func (d *regDriver) OpenConnector(dsn string) (driver.Connector, error) {
	return openConnector(d.base, dsn, nil)
}

// baseDrivers caches baseDriver's answers; a base driver, once registered,
// cannot be unregistered, so an entry never goes stale.
var baseDrivers sync.Map // base name → driver.Driver

// baseDriver returns the driver registered with database/sql as base.
// database/sql hands out a registered driver only through a DB, so one is
// opened (it does not connect) with the DSN at hand and closed again.
func baseDriver(base, dsn string) (driver.Driver, error) {
	if d, ok := baseDrivers.Load(base); ok {
		return d.(driver.Driver), nil
	}
	found := false
	for _, n := range sql.Drivers() {
		if n == base {
			found = true
			break
		}
	}
	if !found {
		hint := "import the package that registers it"
		if imp, ok := baseImports[base]; ok {
			hint = fmt.Sprintf("add `import _ %q`", imp)
		}
		return nil, errorf(ErrUnknownDriver, "base driver %q is not registered: %s", base, hint)
	}
	db, err := sql.Open(base, dsn)
	if err != nil {
		return nil, err
	}
	drv := db.Driver()
	db.Close()
	baseDrivers.Store(base, drv)
	return drv, nil
}

// interceptor is sqlmw's hook into one connection.
type interceptor struct {
	sqlmw.NullInterceptor
	c *connState
}

// ConnPrepareContext answers a probe, or prepares query on the base
// connection and wraps the statement in a stmt, whose argument checks are
// those database/sql makes with the base alone (stmt.go). sqlmw wraps it
// again and sends its executions to StmtExecContext and StmtQueryContext,
// which track them.
func (i *interceptor) ConnPrepareContext(ctx context.Context, conn driver.ConnPrepareContext, query string) (context.Context, driver.Stmt, error) {
	if query == probeSQL {
		i.c.answerProbe(ctx) // an Exec probe on a base without ExecerContext comes through Prepare
		return ctx, probeStmt{}, nil
	}
	st, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return ctx, nil, err
	}
	return ctx, &stmt{base: st, conn: i.c}, nil
}

// ConnExecContext classifies query before it is sent and applies its
// effects after it ran, or may have run (uncertain).
func (i *interceptor) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	if query == probeSQL {
		i.c.answerProbe(ctx)
		return driver.RowsAffected(0), nil
	}
	cs := i.c.before(ctx, query)
	res, err := conn.ExecContext(ctx, query, args)
	if err == nil || uncertain(err) {
		i.c.after(ctx, cs, args, false)
	}
	return res, err
}

// StmtExecContext is ConnExecContext for a prepared statement. The probe
// was answered when it was prepared (ConnPrepareContext): it runs nothing.
func (i *interceptor) StmtExecContext(ctx context.Context, stmt driver.StmtExecContext, query string, args []driver.NamedValue) (driver.Result, error) {
	if query == probeSQL {
		return driver.RowsAffected(0), nil
	}
	cs := i.c.before(ctx, query)
	res, err := stmt.ExecContext(ctx, args)
	if err == nil || uncertain(err) {
		i.c.after(ctx, cs, args, false)
	}
	return res, err
}

// ConnQueryContext classifies query, sends it and wraps its rows (queried).
// A probe sent as a query is answered with rows of no row, whose
// database and map probe then finds through rowsOf.
func (i *interceptor) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	if query == probeSQL {
		return ctx, i.c.newRows(ctx, probeRows{}, nil, nil, 0), nil
	}
	cs := i.c.before(ctx, query)
	epoch := i.c.db.cdb.Now() // before the query is sent
	r, err := conn.QueryContext(ctx, query, args)
	return ctx, i.c.queried(ctx, cs, args, r, err, epoch), err
}

// StmtQueryContext is ConnQueryContext for a prepared statement.
func (i *interceptor) StmtQueryContext(ctx context.Context, stmt driver.StmtQueryContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	if query == probeSQL {
		return ctx, i.c.newRows(ctx, probeRows{}, nil, nil, 0), nil
	}
	cs := i.c.before(ctx, query)
	epoch := i.c.db.cdb.Now() // before the query is sent
	r, err := stmt.QueryContext(ctx, args)
	return ctx, i.c.queried(ctx, cs, args, r, err, epoch), err
}

// queried follows a query that was sent: its writes, if any, and its rows.
// A write through the query path (INSERT … RETURNING) has happened when the
// first row is ready; it may commit only when the rows are done, so the
// rows expire it again when they close.
func (c *connState) queried(ctx context.Context, cs *classify.Statement, args []driver.NamedValue, r driver.Rows, err error, epoch uint64) driver.Rows {
	if err != nil {
		if uncertain(err) {
			c.after(ctx, cs, args, false) // no rows: publish now
		}
		return nil
	}
	autocommit := c.tx == nil
	eff := c.after(ctx, cs, args, true)
	rs := c.newRows(ctx, r, cs, eff, epoch)
	rs.publish = autocommit && eff != nil && (c.db.bus != nil || len(c.db.syncers) > 0)
	return rs
}

// probeSQL is a statement that idmap's interceptor answers itself, without
// sending it to the server: Get sends it through a *sql.Tx or *sql.Conn to
// learn their database and map.
const probeSQL = "SELECT 1 /* idmap: probe, answered by the idmap driver */"

// probeRows are the rows of probeSQL: one column, no row.
type probeRows struct{}

func (probeRows) Columns() []string         { return []string{"idmap_probe"} }
func (probeRows) Close() error              { return nil }
func (probeRows) Next([]driver.Value) error { return io.EOF }

// probeStmt is the statement that ConnPrepareContext returns for probeSQL,
// which database/sql prepares on a base without ExecerContext: it runs
// nothing.
type probeStmt struct{}

func (probeStmt) Close() error                               { return nil }
func (probeStmt) NumInput() int                              { return 0 }
func (probeStmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(0), nil }
func (probeStmt) Query([]driver.Value) (driver.Rows, error)  { return probeRows{}, nil }
func (probeStmt) QueryContext(context.Context, []driver.NamedValue) (driver.Rows, error) {
	return probeRows{}, nil
}
