package idmap

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/signals"
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

// An Option configures a database opened with idmap.
type Option func(*config)

type config struct {
	name       string
	dialect    dialect
	hasDialect bool
	noFlush    [4]bool // by signals.Reason: automatic flushes turned off
	err        error
}

// Name sets the database's name. Databases that share a name share their
// maps and their expiry (a primary and its replica). The default is the DSN
// with any password removed.
func Name(name string) Option { return func(c *config) { c.name = name } }

// Dialect sets the SQL dialect: "sqlite", "mysql" or "postgres". The default
// is inferred from the base driver's name: containing "sqlite" → sqlite,
// "mysql" → mysql, "pgx" or "postgres" → postgres; anything else gets "?"
// placeholders and double-quoted identifiers.
func Dialect(d string) Option {
	return func(c *config) {
		dl, ok := parseDialect(d)
		if !ok {
			c.err = fmt.Errorf("idmap: unknown dialect %q (want sqlite, mysql or postgres)", d)
			return
		}
		c.dialect, c.hasDialect = dl, true
	}
}

// NoAutoFlush turns off automatic flushes of this database, by reason:
//
//   - signals.SchemaChange: DDL through the driver no longer flushes the
//     shared map (nor sends signals); what it may have changed is still
//     expired, so nothing stale is served, and identities are kept.
//   - signals.TxEnd: a transaction begun without a scope no longer drops
//     its scope's objects when it ends; they move into the shared map
//     (expired if the transaction wrote, and never fresher than its start).
//
// The default flushes on both. RequestEnd belongs to Middleware: a handler
// that wants no flush at the end of its requests does not use it.
func NoAutoFlush(reasons ...signals.Reason) Option {
	return func(c *config) {
		for _, r := range reasons {
			if r == signals.SchemaChange || r == signals.TxEnd {
				c.noFlush[r] = true
			} else {
				c.err = fmt.Errorf("idmap: NoAutoFlush: %v is not an automatic flush of a database", r)
			}
		}
	}
}

// database is one database opened through idmap: its name, dialect and
// maps. Several may share a cache.DB (same name).
type database struct {
	name    string
	dialect dialect
	cdb     *cache.DB
	noFlush [4]bool // by signals.Reason
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
	return &database{name: cfg.name, dialect: cfg.dialect, cdb: cache.Open(cfg.name), noFlush: cfg.noFlush}, nil
}

// Open opens a database through idmap on the base driver registered as base,
// like sql.Open: it checks its arguments and does not connect.
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
// process (a connector does not reveal its DSN).
func NewConnector(c driver.Connector, opts ...Option) driver.Connector {
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
	return &connector{db: db, base: c}
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
	drv, err := baseDriver(base, dsn)
	if err != nil {
		return nil, err
	}
	var bc driver.Connector
	if dc, ok := drv.(driver.DriverContext); ok {
		bc, err = dc.OpenConnector(dsn)
		if err != nil {
			return nil, err
		}
	} else {
		bc = dsnConnector{dsn: dsn, drv: drv}
	}
	db, err := newDatabase(redactDSN(dsn), inferDialect(base), opts)
	if err != nil {
		return nil, err
	}
	return &connector{db: db, base: bc}, nil
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
	db   *database
	base driver.Connector
}

var (
	_ driver.Connector = (*connector)(nil)
	_ io.Closer        = (*connector)(nil)
)

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	bc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return c.db.wrap(bc), nil
}

// Driver returns a driver bound to this database: (*sql.DB).Driver() returns
// it, which is how Get, Cached and NameOf find the database of a *sql.DB
// without a query.
func (c *connector) Driver() driver.Driver { return &boundDriver{db: c.db, base: c.base.Driver()} }

// Close closes the base connector if it has a Close method; database/sql
// calls it from (*sql.DB).Close.
func (c *connector) Close() error {
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
		return nil, err
	}
	return d.db.wrap(bc), nil
}

// wrap puts a base connection behind sqlmw with an interceptor of its own,
// which keeps the connection's state (its transaction), and behind conn,
// which lets users reach the base connection.
func (db *database) wrap(bc driver.Conn) driver.Conn {
	st := &connState{db: db, base: bc}
	_, st.hasBeginTx = bc.(driver.ConnBeginTx)
	_, execCtx := bc.(driver.ExecerContext)
	_, exec := bc.(driver.Execer)
	_, queryCtx := bc.(driver.QueryerContext)
	_, query := bc.(driver.Queryer)
	wc, _ := sqlmw.Driver(oneConn{bc}, &interceptor{c: st}).Open("")
	c := &conn{inner: wc, st: st}
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

// oneConn is a driver whose only connection is c: it lets sqlmw wrap a
// connection made by a connector.
type oneConn struct{ c driver.Conn }

func (o oneConn) Open(string) (driver.Conn, error) { return o.c, nil }

// connState is what idmap knows of one connection. database/sql uses a
// connection from one goroutine at a time (under its own lock), so the
// fields need no lock of their own.
type connState struct {
	db         *database
	base       driver.Conn
	hasBeginTx bool     // base has ConnBeginTx
	tx         *txState // the open transaction, or nil
}

// txState is an open transaction: begun with BeginTx, or with BEGIN sent as
// SQL (raw).
type txState struct {
	epoch uint64       // the database's clock when it began
	scope *cache.Scope // where its loads go
	own   bool         // scope made for the transaction, ended with it
	raw   bool         // begun by SQL text, not by BeginTx
	wrote bool
}

// mapFor returns the map that loads on this connection go to.
func (c *connState) mapFor(ctx context.Context) cache.Map {
	if c.tx != nil {
		return c.tx.scope.In(c.db.cdb)
	}
	if s := scopeFrom(ctx); s != nil {
		return s.In(c.db.cdb)
	}
	return c.db.cdb.Shared()
}

func (c *connState) begin(ctx context.Context, raw bool) {
	s := scopeFrom(ctx)
	t := &txState{scope: s, raw: raw, epoch: c.db.cdb.Now()}
	if s == nil {
		t.scope, t.own = cache.NewScope(), true
	}
	c.tx = t
}

// end closes the open transaction. Its writes expire for every map now that
// they are committed (or rolled back: what its own map loaded is gone too).
func (c *connState) end() {
	t := c.tx
	if t == nil {
		return
	}
	c.tx = nil
	if t.wrote {
		c.db.cdb.ExpireAll()
	}
	if !t.own {
		return
	}
	if !c.db.noFlush[signals.TxEnd] {
		endScope(t.scope, signals.TxEnd, c.db.name)
		return
	}
	shared := c.db.cdb.Shared()
	for _, it := range t.scope.Drain(c.db.cdb) {
		shared.Put(it.Type, &cache.Load{Key: it.Key, Obj: it.Obj, Epoch: min(it.Epoch, t.epoch), Partial: it.Partial}, nil)
	}
}

// wrote records a successful write.
func (c *connState) wrote(ctx context.Context, info *stmtInfo) {
	if c.tx != nil {
		c.tx.wrote = true
	}
	c.db.cdb.ExpireAll()
	if info.schema {
		c.db.schemaChanged()
	}
	switch info.tx {
	case txBegin:
		if c.tx == nil {
			c.begin(ctx, true)
		}
	case txEnd:
		if c.tx != nil && c.tx.raw {
			c.end()
		}
	}
}

// conn is the connection database/sql sees: sqlmw's, with a way back to the
// base driver's connection for sql.Conn.Raw. It claims what sqlmw's
// connection claims, but ExecerContext and QueryerContext only where the
// base has them (execConn, queryConn); where the base lacks an interface,
// sqlmw's fallback does what database/sql does without it (the test
// TestDriverBehavesAsBase compares the two over every variant).
type conn struct {
	inner driver.Conn // sqlmw's connection
	st    *connState
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.ExecerContext      = execConn{}
	_ driver.QueryerContext     = queryConn{}
)

// Unwrap returns the base driver's connection. Reach it with sql.Conn.Raw:
//
//	err := c.Raw(func(dc any) error {
//		pc := dc.(interface{ Unwrap() driver.Conn }).Unwrap().(*stdlib.Conn)
//		…
//	})
//
// Statements sent on it directly bypass idmap: it cannot expire what they
// write.
func (c *conn) Unwrap() driver.Conn { return c.st.base }

func (c *conn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }
func (c *conn) Close() error                              { return c.inner.Close() }

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *conn) Ping(ctx context.Context) error { return c.inner.(driver.Pinger).Ping(ctx) }

func (c *conn) ResetSession(ctx context.Context) error {
	return c.inner.(driver.SessionResetter).ResetSession(ctx)
}

func (c *conn) IsValid() bool { return c.inner.(driver.Validator).IsValid() }

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.inner.(driver.NamedValueChecker).CheckNamedValue(nv)
}

type execConn struct{ c *conn }

func (e execConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return e.c.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
}

type queryConn struct{ c *conn }

func (q queryConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return q.c.inner.(driver.QueryerContext).QueryContext(ctx, query, args)
}

// interceptor is sqlmw's hook into one connection.
type interceptor struct {
	sqlmw.NullInterceptor
	c *connState
}

func (i *interceptor) ConnBeginTx(ctx context.Context, conn driver.ConnBeginTx, opts driver.TxOptions) (context.Context, driver.Tx, error) {
	var tx driver.Tx
	var err error
	if i.c.hasBeginTx {
		tx, err = conn.BeginTx(ctx, opts)
	} else {
		tx, err = beginWithoutContext(ctx, i.c.base, opts)
	}
	if err != nil {
		return ctx, nil, err
	}
	i.c.begin(ctx, false)
	return ctx, tx, nil
}

func (i *interceptor) TxCommit(ctx context.Context, tx driver.Tx) error {
	err := tx.Commit()
	i.c.end()
	return err
}

func (i *interceptor) TxRollback(ctx context.Context, tx driver.Tx) error {
	err := tx.Rollback()
	i.c.end()
	return err
}

func (i *interceptor) ConnPrepareContext(ctx context.Context, conn driver.ConnPrepareContext, query string) (context.Context, driver.Stmt, error) {
	if query == probeSQL {
		return ctx, probeStmt{}, nil
	}
	st, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return ctx, nil, err
	}
	return ctx, &stmt{base: st, conn: i.c}, nil
}

func (i *interceptor) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := conn.ExecContext(ctx, query, args)
	if err == nil {
		if info := classifyStmt(query); !info.read {
			i.c.wrote(ctx, info)
		}
	}
	return res, err
}

func (i *interceptor) StmtExecContext(ctx context.Context, stmt driver.StmtExecContext, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := stmt.ExecContext(ctx, args)
	if err == nil {
		if info := classifyStmt(query); !info.read {
			i.c.wrote(ctx, info)
		}
	}
	return res, err
}

func (i *interceptor) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	if query == probeSQL {
		return ctx, i.c.newRows(ctx, probeRows{}, nil, 0), nil
	}
	return i.query(ctx, query, func() (driver.Rows, error) { return conn.QueryContext(ctx, query, args) })
}

func (i *interceptor) StmtQueryContext(ctx context.Context, stmt driver.StmtQueryContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	if query == probeSQL {
		return ctx, i.c.newRows(ctx, probeRows{}, nil, 0), nil
	}
	return i.query(ctx, query, func() (driver.Rows, error) { return stmt.QueryContext(ctx, args) })
}

func (i *interceptor) query(ctx context.Context, query string, run func() (driver.Rows, error)) (context.Context, driver.Rows, error) {
	info := classifyStmt(query)
	epoch := i.c.db.cdb.Now() // before the query is sent
	r, err := run()
	if err != nil {
		return ctx, nil, err
	}
	if !info.read {
		i.c.wrote(ctx, info)
	}
	return ctx, i.c.newRows(ctx, r, info, epoch), nil
}

// probeSQL is a statement that idmap's interceptor answers itself, without
// sending it to the server: Get sends it through a *sql.Tx or *sql.Conn to
// learn their database and map.
const probeSQL = "SELECT 1 /* idmap: probe, answered by the idmap driver */"

type probeRows struct{}

func (probeRows) Columns() []string         { return []string{"idmap_probe"} }
func (probeRows) Close() error              { return nil }
func (probeRows) Next([]driver.Value) error { return io.EOF }

type probeStmt struct{}

func (probeStmt) Close() error                               { return nil }
func (probeStmt) NumInput() int                              { return 0 }
func (probeStmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(0), nil }
func (probeStmt) Query([]driver.Value) (driver.Rows, error)  { return probeRows{}, nil }
func (probeStmt) QueryContext(context.Context, []driver.NamedValue) (driver.Rows, error) {
	return probeRows{}, nil
}

// schemaChanged flushes the database after DDL went through the driver,
// or only expires it when that flush is turned off.
func (db *database) schemaChanged() {
	if db.noFlush[signals.SchemaChange] {
		db.cdb.ExpireAll()
		return
	}
	flushDB(db.cdb, nil, signals.SchemaChange, "")
}

// stmtInfo is what idmap needs to know of a statement. This first version
// is deliberately coarse: anything that is not a plain read expires the
// whole database.
type stmtInfo struct {
	read    bool // a plain read: writes nothing
	locking bool // SELECT … FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE
	schema  bool // DDL
	tx      txOp // raw transaction control
}

type txOp uint8

const (
	txNone txOp = iota
	txBegin
	txEnd
)

var stmtCache sync.Map // string → *stmtInfo
var stmtCacheLen atomic.Int64

const stmtCacheMax = 10000

func classifyStmt(query string) *stmtInfo {
	if v, ok := stmtCache.Load(query); ok {
		return v.(*stmtInfo)
	}
	info := classifyText(query)
	if stmtCacheLen.Load() < stmtCacheMax {
		if _, loaded := stmtCache.LoadOrStore(query, info); !loaded {
			stmtCacheLen.Add(1)
		}
	}
	return info
}

func classifyText(query string) *stmtInfo {
	info := &stmtInfo{}
	first := firstKeyword(query)
	upper := strings.ToUpper(query)
	multi := strings.Contains(strings.TrimRight(strings.TrimSpace(query), ";"), ";")
	switch first {
	case "SELECT", "VALUES", "SHOW", "DESCRIBE", "DESC", "TABLE":
		info.read = !multi && !strings.Contains(upper, " INTO ")
	case "WITH":
		info.read = !multi && !containsAny(upper, "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE")
	case "EXPLAIN":
		info.read = !multi && !strings.Contains(upper, "ANALYZE")
	case "PRAGMA":
		info.read = !multi && !strings.Contains(query, "=")
	case "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE":
		info.schema = true
	case "BEGIN", "START":
		info.tx = txBegin
	case "COMMIT", "END", "ROLLBACK", "ABORT":
		if !strings.Contains(upper, " TO ") {
			info.tx = txEnd
		}
	}
	if info.read {
		info.locking = containsAny(upper, "FOR UPDATE", "FOR SHARE", "FOR NO KEY UPDATE", "FOR KEY SHARE", "LOCK IN SHARE MODE")
	}
	return info
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// firstKeyword returns the first word of a statement in upper case, after
// white space, comments and opening parentheses.
func firstKeyword(q string) string {
	i := 0
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ';':
			i++
		case strings.HasPrefix(q[i:], "--") || c == '#':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				return ""
			}
			i += j + 1
		case strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return ""
			}
			i += j + 4
		default:
			j := i
			for j < len(q) && (q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z') {
				j++
			}
			return strings.ToUpper(q[i:j])
		}
	}
	return ""
}
