package idmap

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/cache"
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

const driverPrefix = "idmap+"

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

// database is one database opened through idmap: its name, dialect and
// maps. Several may share a cache.DB (same name).
type database struct {
	name     string
	dialect  dialect
	cdb      *cache.DB
	noFlush  [8]bool             // by signals.Reason
	triggers map[string][]string // TriggerWrites
	bus      bus.Bus             // WithBus, or nil
	sources  []bus.Bus           // WithSource
	syncers  []bus.Syncer        // the sources that are Syncers
	exact    bool                // ExactExpiry

	schema atomic.Pointer[schemaInfo] // foreign keys and triggers; nil until read, and after DDL
	// schemaTried: a read that needs the catalogue (it calls functions or
	// names what no mapped type declares) has tried to read it since the
	// last DDL (a read that fails is not retried for every SELECT; the next
	// write retries it).
	schemaTried atomic.Bool
	// sawScope: a query has run in a scope of a context (NewContext,
	// Middleware) on this database; set once, read by Bind (query.go).
	sawScope atomic.Bool
}

func newDatabase(defaultName string, guess dialect, opts []Option) (*database, error) {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	if cfg.name == "" {
		cfg.name = defaultName
	}
	if !cfg.hasDialect {
		cfg.dialect = guess
	}
	db := &database{name: cfg.name, dialect: cfg.dialect, cdb: mapsOf(cfg.name), noFlush: cfg.noFlush, triggers: cfg.triggers, bus: cfg.bus, exact: cfg.exact}
	if cfg.logger != nil {
		loggers.Store(db.cdb, cfg.logger)
	}
	db.cdb.SetMaxAge(cfg.maxAge)
	db.cdb.SetMaxStrong(cfg.maxStrong)
	db.cdb.SetShared(!cfg.noShared)
	if cfg.bus != nil {
		if err := attach(cfg.bus, db.cdb, cfg.lease); err != nil {
			return nil, err
		}
	}
	if err := db.attachSources(cfg.sources, cfg.lease); err != nil {
		if cfg.bus != nil {
			detach(cfg.bus, db.cdb)
		}
		return nil, err
	}
	return db, nil
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

// NewConnector wraps a base driver's connector, for sql.OpenDB:
//
//	mc, err := mysql.NewConnector(cfg)
//	…
//	db := sql.OpenDB(idmap.NewConnector(mc, idmap.Name("app")))
//
// Without the Name option the database gets a name of its own, unique in the
// process (a connector does not reveal its DSN). Given a connector of idmap
// itself, NewConnector wraps that connector's base: idmap is never stacked
// on idmap (the options given here apply, those of the inner connector do
// not).
func NewConnector(c driver.Connector, opts ...Option) driver.Connector {
	if ic, ok := c.(*connector); ok {
		// An idmap connector: wrap its base instead, so that one idmap
		// layer sees each statement. opts apply; ic's do not.
		c = ic.base
	}
	guess := dialectGeneric
	if c != nil {
		guess = inferDialect(pkgPath(c))
		if guess == dialectGeneric && c.Driver() != nil {
			guess = inferDialect(pkgPath(c.Driver()))
		}
	}
	db, err := newDatabase(fmt.Sprintf("%s#%d", typeName(reflect.TypeOf(c)), connectorSeq.Add(1)), guess, opts)
	if err == nil && c == nil {
		err = errors.New("idmap: NewConnector: nil connector")
	}
	if err != nil {
		return errConnector{err}
	}
	return newConnector(db, c)
}

func newConnector(db *database, base driver.Connector) *connector {
	return &connector{db: db, base: base, bound: &boundDriver{db: db, base: base.Driver()}}
}

var connectorSeq atomic.Int64

func pkgPath(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}

// NameOf returns the name of a database opened through idmap, or "" for any
// other database.
func NameOf(db *sql.DB) string {
	if d := databaseOf(db); d != nil {
		return d.name
	}
	return ""
}

func databaseOf(db *sql.DB) *database {
	if db == nil {
		return nil
	}
	if bd, ok := db.Driver().(*boundDriver); ok {
		return bd.db
	}
	return nil
}

// regDriver is what "idmap+base" is registered as.
type regDriver struct{ base string }

var (
	_ driver.Driver        = (*regDriver)(nil)
	_ driver.DriverContext = (*regDriver)(nil)
)

func (d *regDriver) Open(dsn string) (driver.Conn, error) {
	c, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

func (d *regDriver) OpenConnector(dsn string) (driver.Connector, error) {
	return openConnector(d.base, dsn, nil)
}

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

func openConnector(base, dsn string, opts []Option) (driver.Connector, error) {
	name, secrets := redactDSN(dsn, inferDialect(base))
	drv, err := baseDriver(base, dsn)
	if err != nil {
		return nil, scrubError(err, secrets)
	}
	// idmap on idmap is idmap once: a base that is itself an idmap driver
	// ("idmap+sqlite3", "idmap+idmap+…") is unwrapped to its own base, so
	// that one idmap layer sees each statement. Each step makes the name
	// shorter: the loop ends.
	guess := inferDialect(base)
	for {
		if bd, ok := drv.(*boundDriver); ok && bd.base != nil {
			drv, guess = bd.base, bd.db.dialect // a *sql.DB's driver registered again: its base
			break
		}
		rd, ok := drv.(*regDriver)
		if !ok {
			break
		}
		base = rd.base
		if drv, err = baseDriver(base, dsn); err != nil {
			return nil, scrubError(err, secrets)
		}
		guess = inferDialect(base)
	}
	var bc driver.Connector
	if dc, ok := drv.(driver.DriverContext); ok {
		bc, err = dc.OpenConnector(dsn)
		if err != nil {
			return nil, scrubError(err, secrets)
		}
	} else {
		bc = dsnConnector{dsn: dsn, drv: drv}
	}
	db, err := newDatabase(name, guess, opts)
	if err != nil {
		return nil, err
	}
	c := newConnector(db, bc)
	c.secrets = secrets
	return c, nil
}

// dsnConnector is the connector of a base driver without OpenConnector.
type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// errConnector reports, at the first connection, an error found when the
// connector was made (NewConnector cannot return one).
type errConnector struct{ err error }

func (c errConnector) Connect(context.Context) (driver.Conn, error) { return nil, c.err }
func (c errConnector) Driver() driver.Driver                        { return errDriver(c) }

type errDriver struct{ err error }

func (d errDriver) Open(string) (driver.Conn, error) { return nil, d.err }

// connector opens connections of one idmap database.
type connector struct {
	db      *database
	base    driver.Connector
	bound   *boundDriver // what Driver returns, made once: Get looks it up on every call
	secrets []string     // the DSN's passwords, scrubbed from connection errors
}

var (
	_ driver.Connector = (*connector)(nil)
	_ io.Closer        = (*connector)(nil)
)

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	bc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, scrubError(err, c.secrets)
	}
	return c.db.wrap(bc), nil
}

// Driver returns a driver bound to this database: (*sql.DB).Driver() returns
// it, which is how Get, Cached and NameOf find the database of a *sql.DB
// without a query.
func (c *connector) Driver() driver.Driver { return c.bound }

// Close closes the base connector if it has a Close method; database/sql
// calls it from (*sql.DB).Close. It also expires everything the maps hold
// of the database: what happens to it while no *sql.DB of idmap is open is
// not seen (a file replaced, an in-memory database gone), so nothing loaded
// before is served without a reload.
func (c *connector) Close() error {
	c.db.cdb.ExpireAll()
	if c.db.bus != nil {
		detach(c.db.bus, c.db.cdb)
	}
	for _, src := range c.db.sources {
		detach(src, c.db.cdb)
	}
	if cl, ok := c.base.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// boundDriver is the driver of one idmap database.
type boundDriver struct {
	db   *database
	base driver.Driver
}

func (d *boundDriver) Open(dsn string) (driver.Conn, error) {
	if d.base == nil {
		return nil, errors.New("idmap: no base driver")
	}
	bc, err := d.base.Open(dsn)
	if err != nil {
		_, secrets := redactDSN(dsn, d.db.dialect)
		return nil, scrubError(err, secrets)
	}
	return d.db.wrap(bc), nil
}

// wrap puts a base connection behind sqlmw with an interceptor of its own,
// which keeps the connection's state (its transaction), and behind conn,
// which lets users reach the base connection.
func (db *database) wrap(bc driver.Conn) driver.Conn {
	st := &connState{db: db, base: bc}
	attachHooks(st)
	_, st.hasBeginTx = bc.(driver.ConnBeginTx)
	_, execCtx := bc.(driver.ExecerContext)
	//lint:ignore SA1019 a base driver may have only the old interfaces: idmap must pass them on as they are
	_, exec := bc.(driver.Execer)
	_, queryCtx := bc.(driver.QueryerContext)
	//lint:ignore SA1019 as above
	_, query := bc.(driver.Queryer)
	wc, _ := sqlmw.Driver(oneConn{bc}, &interceptor{c: st}).Open("")
	c := newConn(wc, st)
	// sqlmw's connection always claims ExecerContext and QueryerContext.
	// database/sql converts arguments at the connection level for a
	// connection that has them, and at the statement level (with the
	// statement's ColumnConverter) for one that has not: claim them only
	// where the base has them (or their context-less forms).
	switch e, q := execCtx || exec, queryCtx || query; {
	case e && q:
		return struct {
			*conn
			execConn
			queryConn
		}{c, execConn{c}, queryConn{c}}
	case e:
		return struct {
			*conn
			execConn
		}{c, execConn{c}}
	case q:
		return struct {
			*conn
			queryConn
		}{c, queryConn{c}}
	}
	return c
}
