package idmap

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync/atomic"
)

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

// newConnector returns the connector of db on base, with the driver that
// (*sql.DB).Driver returns made once.
func newConnector(db *database, base driver.Connector) *connector {
	return &connector{db: db, base: base, bound: &boundDriver{db: db, base: base.Driver()}}
}

// connectorSeq numbers the databases that NewConnector names.
var connectorSeq atomic.Int64

// pkgPath returns the package path of v's type, through pointers: what
// inferDialect guesses the SQL dialect from when no driver name is known.
func pkgPath(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}

// openConnector is Open's and the registered drivers' connector: the base
// driver base on dsn, in a database named (unless Name is given) after dsn
// without its passwords.
// Errors from the base driver are returned with the passwords scrubbed.
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

// Connect opens a connection with the base driver's Open, as database/sql
// does for a driver without OpenConnector; Driver returns the base driver.
func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// errConnector reports, at the first connection, an error found when the
// connector was made (NewConnector cannot return one).
type errConnector struct{ err error }

// Connect returns the error; so does the Open of the driver that Driver
// returns.
func (c errConnector) Connect(context.Context) (driver.Conn, error) { return nil, c.err }
func (c errConnector) Driver() driver.Driver                        { return errDriver(c) }

// errDriver is errConnector's driver.
type errDriver struct{ err error }

// Open returns the error.
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

// Connect opens a base connection and wraps it (database.wrap); the base's
// error is returned with the DSN's passwords scrubbed.
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
	c.db.unlink()
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

// Open opens a connection of the base driver on dsn and wraps it into this
// database. database/sql connects through the connector; Open serves a
// *sql.DB's driver registered again under a name of its own and opened by
// that name. Errors are returned with dsn's passwords scrubbed.
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
