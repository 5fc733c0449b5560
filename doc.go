// Package idmap is an identity map for database/sql: while a unit of work
// runs, every row of a mapped table is one Go object. Two queries that
// return the same row give the same pointer, so values and temporary
// (non-column) fields set in one place are seen everywhere else, and rows
// already loaded are served by [Get] without a round trip to the database.
//
// It is a driver wrapper: open a database as "idmap+" followed by the name of
// a registered driver, and use database/sql as usual. A write that goes
// through the driver expires what it may have changed.
//
//	import _ "github.com/mattn/go-sqlite3"
//
//	db, err := sql.Open("idmap+sqlite3", "file:app.db")
//	users, err := idmap.Query[User](ctx, db, "SELECT id, name FROM users WHERE name LIKE ?", "a%")
//	u, err := idmap.Get[User](ctx, db, 42)  // no query if 42 is loaded and fresh
//
// The sections below list the API by task. The idea comes from
// django-idmap, for Django's ORM.
//
// # Opening a database
//
// At init idmap registers the drivers "idmap+sqlite3", "idmap+sqlite",
// "idmap+mysql", "idmap+pgx" and "idmap+postgres"; each uses the base driver
// registered under the name after the "+", looked up when a database is
// opened (idmap imports no driver).
//
//   - [Register] registers "idmap+" followed by any other driver's name.
//   - [Open] opens a database with options (each an [Option]), like
//     sql.Open: it does not connect. [NewConnector] wraps a base driver's connector, for
//     sql.OpenDB.
//   - [Name] names the database: databases that share a name share their
//     maps (a primary and its replica). The default name is the DSN with
//     any password removed; [NameOf] returns it.
//   - [Dialect] sets the SQL dialect when the base driver's name does not
//     tell it.
//
// The other options are listed with their tasks below.
//
// # Mapping a type
//
// A struct type is mapped when it has a TableName() string method or was
// registered with [Model] (whose options, each a [ModelOption], are [Table]
// and [StrongRefs]). Columns come from the `db` tag, else the snake_case of the
// field name; `db:"-"` fields are temporary attributes, kept across loads;
// embedded structs are flattened. The primary key is the fields tagged
// `db:"col,pk"` (several make a composite key), else the column "id".
//
//	type User struct {
//		ID     int64  `db:"id"`
//		Name   string `db:"name"`
//		Visits int    `db:"-"` // temporary: never a column, kept across loads
//	}
//
//	func (User) TableName() string { return "users" }
//
// # Binding rows
//
//   - [Query] runs a query and binds every row into a []*T; [QueryOne]
//     binds the first row into a *T (sql.ErrNoRows when there is none).
//   - [Bind] binds rows queried elsewhere (*sql.Rows of an idmap database)
//     into a *[]*T, a **T, or, for a type that is not mapped, a *[]T or *T;
//     it closes the rows.
//
// For a mapped type, a row whose key is already in the map gives the
// canonical object and its values are discarded, unless the entry is
// expired, the query is a locking read (FOR UPDATE, FOR SHARE) or its
// context has [WithRefresh]: then the object is refreshed. The map the rows
// go to follows the query: its transaction's map, else the scope of the
// context it ran with, else the shared map. Inside a scope, pass the scope's
// context to every query.
//
// # Getting by key
//
//   - [Get] returns the object with a primary key: a fresh object in the map
//     with no query, else one SELECT (sql.ErrNoRows when absent). Key values
//     are converted to the key fields' types: 1, int32(1) and "1" are one
//     key.
//   - [GetMany] and [GetByKeys] return the objects of many keys in key order,
//     nil where no row exists: hits from the map, misses in one query per
//     chunk (that is how to remove N+1 queries). GetByKeys takes the keys in
//     a typed slice, such as a []int64.
//   - [Cached] returns what Get would return without a query, or nil.
//   - [Intern] makes objects scanned or decoded elsewhere (sqlx, scany, JSON)
//     canonical.
//
// Each takes a [Querier] (a *sql.DB, *sql.Tx or *sql.Conn) and uses the map
// of ctx's scope, or of q's transaction, or the shared map.
//
// # Scopes
//
// With no scope, loads go to the database's shared map, process-wide, which
// holds its objects weakly (an entry lives while some code holds its
// object; types mapped with [StrongRefs] are held until flushed). A scope is a private map
// for one unit of work that holds its objects strongly until it ends: it
// never reads from or writes to the shared map or another scope.
//
//   - [NewContext] returns a context that carries a new scope.
//   - [Middleware] gives each HTTP request a scope, flushed when the
//     handler returns: use r.Context() for the request's queries.
//   - [WithRefresh] makes the rows loaded with a context overwrite their
//     canonical objects.
//   - [NoSharedMap] turns a database's shared map off, for databases whose
//     sessions do not all see the same rows (row-level security).
//
// # Changing a row
//
// Objects of the shared map may be read by any goroutine: never write to
// them. Change a scope's object, a transaction's object, or a [Copy] of a
// shared object, then write the row with SQL through the driver: the write
// expires what it touched, and the next load returns the new row.
//
//	u, err := idmap.Get[User](ctx, db, 42) // shared: read it, never write it
//	c := idmap.Copy(u)
//	c.Name = "bea"
//	_, err = db.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", c.Name, c.ID)
//
// # Transactions
//
// A transaction begun without a scope in its context is its own scope: what
// it loads never reaches the shared map and is dropped when it ends (with
// flush signals of reason signals.TxEnd); one begun in a scope uses that
// scope. Its writes expire what they touched in its own map at once and in
// the other maps when it commits; a rollback expires, in its map, what it
// loaded and wrote. A locking read (SELECT … FOR UPDATE) is never answered
// from the map.
//
//	tx, err := db.BeginTx(ctx, nil)
//	defer tx.Rollback()
//	u, err := idmap.QueryOne[User](ctx, tx, "SELECT id, name FROM users WHERE id = ? FOR UPDATE", 42)
//	u.Name = "bea" // the transaction's own object
//	_, err = tx.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", u.Name, u.ID)
//	err = tx.Commit() // other maps expire key 42 now
//
// # Expiry and flushing
//
// A write through the driver expires the keys it names, else its table,
// else the whole database; a schema change (CREATE, ALTER, DROP…) flushes
// its table, or the database when the table is unknown. Expired objects keep their identity and are reloaded at the
// next read.
//
//   - [TriggerWrites] declares what a table's triggers write (without it, a
//     write to a table with triggers expires the whole database).
//   - [ExactExpiry] makes a write on SQLite expire exactly the rows that
//     SQLite's preupdate hook reports it changed.
//   - [MaxAge] expires the shared maps' entries past an age, a safety net
//     for writers idmap cannot see; [MaxStrongEntries] bounds the entries
//     held strongly.
//   - [Flush], [FlushType] and [FlushInstance] forget objects; package
//     signals sends PreFlush and PostFlush around every flush but
//     FlushInstance. [NoAutoFlush] turns automatic flushes off, by reason.
//
// # Keeping instances coherent
//
// Several instances of a service stay coherent through a bus (package bus):
// each committed write is published as one message per table, and each
// message received from another instance expires what it names, through
// the same epochs as a local write.
//
//   - [WithBus] joins a database to a bus: the adapters are the modules
//     github.com/go-idmap/idmap/bus/pgbus (PostgreSQL LISTEN/NOTIFY) and
//     github.com/go-idmap/idmap/bus/redisbus (Redis pub/sub).
//   - [WithSource] adds a source of invalidations that only delivers: the
//     PostgreSQL change feed (module github.com/go-idmap/idmap/bus/pgfeed),
//     or a [ChangeLog] ([InstallChangeLog], [NewChangeLog], each option a
//     [ChangeLogOption]) on MySQL, MariaDB and SQLite, so that writes by
//     other programs expire too.
//   - [Lease] ([DefaultLease]) bounds how long a database serves from its
//     maps without a proof of delivery from its bus; [Ready] and
//     [WaitReady] tell whether the maps serve.
//   - [InstanceID] is the origin of this process's messages.
//
// # Statistics and logs
//
// [StatsOf] and [AllStats] read each database's counters ([Stats],
// [MapStats], [Expiries], [BusStats]); [StatsHandler] serves them as JSON.
// Package idmapexpvar publishes them through expvar, on request (idmap
// imports no expvar), and the module github.com/go-idmap/idmap/otel exports
// them as OpenTelemetry metrics. [Logger] logs invalidations, flushes, bus
// failures and rows bound outside a scope.
//
// # Errors
//
// The errors that idmap adds start with "idmap:" and name the type, column
// or table at fault (a query's own error comes back as the driver gave it); bad input is an error (an [*Error]), never a panic
// (except [Model], at init). Test them with errors.Is against the sentinels
// [ErrNotIdmap], [ErrNotMapped], [ErrNoTable], [ErrModel], [ErrNoPrimaryKey],
// [ErrBadDestination], [ErrNoField], [ErrDuplicateColumn], [ErrKey] and
// [ErrUnknownDriver]. A DSN's password never appears in a name, an error, a
// log record, a signal or a statistic.
package idmap
