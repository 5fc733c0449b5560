// Package idmap is an identity map for database/sql: while a unit of work
// runs, every row of a mapped table is one Go object. Two queries that
// return the same row give the same pointer, so values and temporary
// (non-column) fields set in one place are seen everywhere else, and rows
// already loaded are served by Get without a round trip to the database.
//
// It is a driver wrapper: open a database as "idmap+" followed by the name of
// a registered driver, and use database/sql as usual.
//
//	import _ "github.com/mattn/go-sqlite3"
//
//	db, err := sql.Open("idmap+sqlite3", "file:app.db")
//	users, err := idmap.Query[User](ctx, db, "SELECT id, name FROM users WHERE name LIKE ?", "a%")
//	u, err := idmap.Get[User](ctx, db, 42)  // no query if 42 is loaded and fresh
//
// Loading. Query and QueryOne run a query and bind its rows; Bind binds
// rows queried elsewhere. Get, GetMany and GetByKeys load by primary key,
// serving fresh objects from the map; Cached looks a key up without a
// query; Intern makes objects scanned or decoded elsewhere canonical. The
// map rows go to follows the context the query ran with: inside a scope,
// pass its context to every query.
//
// Changing a row. Objects of the shared map may be read by any goroutine:
// never write to them. Change a scope's or a transaction's object, or a
// Copy, then write it with SQL through the driver; the write expires what
// it touched.
//
// A struct type is mapped when it has a TableName() string method or was
// registered with Model. Columns come from the `db` tag, else the snake_case
// of the field name; `db:"-"` fields are temporary attributes, kept across
// loads. The primary key is the fields tagged `db:"col,pk"`, else the column
// "id".
//
// Maps. Each database has a shared map, process-wide, holding its objects
// weakly by default (StrongRefs keeps them until flushed). A scope, made by
// NewContext or Middleware, is a private map for one unit of work; a
// transaction begun without a scope is its own scope. Writes made through
// the driver expire what they touched; Flush, FlushType and FlushInstance
// forget objects, with signals (package signals) around every flush but
// FlushInstance.
//
// Options. Name, Dialect, NoAutoFlush and TriggerWrites shape how a database
// is read and expired; MaxStrongEntries bounds what the shared maps hold
// strongly and MaxAge how long they trust an entry; Logger logs
// invalidations, flushes and rows bound outside a scope; WithBus joins the
// instances of a service (package bus, with the adapters bus/pgbus and
// bus/redisbus in their own modules), so that a write in one expires what
// the others hold;
// NoSharedMap keeps only scopes, for a database whose sessions do not all
// see the same rows (row-level security, a role per session).
//
// Statistics. StatsOf and AllStats read each database's counters (entries,
// hits, misses, refreshes, expiries by cause, flushes by reason, weak
// entries released, evictions, bus traffic); StatsHandler serves them as
// JSON; idmapexpvar.Publish publishes them through expvar, on request
// (idmap imports no expvar, so it registers nothing on
// http.DefaultServeMux). The module idmap/otel exports them as
// OpenTelemetry metrics.
//
// The idea comes from django-idmap, for Django's ORM.
package idmap
