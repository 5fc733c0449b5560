package idmap

import (
	"database/sql"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/cache"
)

// database is one database opened through idmap: its name, dialect and
// maps. Several may share a cache.DB (same name). Its fields are set while
// newDatabase makes it and read-only after: only the atomics change, so
// connections read the rest without a lock.
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
	// Middleware) on this database; set once, read by Bind (binder.go).
	sawScope atomic.Bool
	// link is the dbLink of the last *sql.DB that a Get went through to
	// this database (model.relink): made once per *sql.DB, not each time
	// a model's link moves to it, so that Gets alternating between
	// databases allocate nothing.
	link atomic.Pointer[dbLink]
}

// newDatabase makes the database that opts describe: called defaultName
// unless Name is given, of dialect guess unless Dialect is given, on the
// maps of its name (shared with every database of that name), with its bus
// and sources attached. It returns an option's error, or an attach error
// after detaching the bus again.
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

// NameOf returns the name of a database opened through idmap, or "" for any
// other database.
func NameOf(db *sql.DB) string {
	if d := databaseOf(db); d != nil {
		return d.name
	}
	return ""
}

// databaseOf returns the idmap database of db, found through the driver its
// connector returns, without a query; nil for a database not opened through
// idmap.
func databaseOf(db *sql.DB) *database {
	if db == nil {
		return nil
	}
	if bd, ok := db.Driver().(*boundDriver); ok {
		return bd.db
	}
	return nil
}

// dbLink pairs a *sql.DB with its database (model.link). Closing the
// *sql.DB clears both (unlink), so that a model's link holds neither once
// the database is closed.
type dbLink struct {
	sdb unsafe.Pointer // *sql.DB; atomic
	db  unsafe.Pointer // *database; atomic
	// cdb is db's maps, which live as long as the process (mapsOf): set
	// once, so that Get's first case reaches them with no load of db.
	cdb *cache.DB
}

// linked returns the database of sdb if it is the last *sql.DB that a Get
// of m's type went through (one load and a comparison), else nil: then
// relink.
func (m *model) linked(sdb *sql.DB) *database {
	if l := (*dbLink)(atomic.LoadPointer(&m.link)); l != nil && atomic.LoadPointer(&l.sdb) == unsafe.Pointer(sdb) {
		return (*database)(atomic.LoadPointer(&l.db))
	}
	return nil
}

// unlink forgets db's link to its last *sql.DB: the *sql.DB is closing.
// Models whose link it is no longer match it, and hold neither the
// *sql.DB nor db.
func (db *database) unlink() {
	if l := db.link.Swap(nil); l != nil {
		atomic.StorePointer(&l.sdb, nil)
		atomic.StorePointer(&l.db, nil)
	}
}

// relink returns databaseOf(sdb), and makes sdb m's last *sql.DB, with
// the database's link to sdb (made if sdb is not the database's last).
func (m *model) relink(sdb *sql.DB) *database {
	db := databaseOf(sdb)
	if db == nil {
		return nil
	}
	l := db.link.Load()
	if l == nil || atomic.LoadPointer(&l.sdb) != unsafe.Pointer(sdb) {
		l = &dbLink{sdb: unsafe.Pointer(sdb), db: unsafe.Pointer(db), cdb: db.cdb}
		db.link.Store(l)
	}
	atomic.StorePointer(&m.link, unsafe.Pointer(l))
	return db
}

// mapsByName holds the maps of every database name used in the process:
// databases opened with one name share them (Name), and they live for the
// life of the process, as the names that Flush and StatsOf take do.
var mapsByName sync.Map // name → *cache.DB

// mapsOf returns the maps of the database called name, making them on first
// use.
func mapsOf(name string) *cache.DB {
	if d, ok := mapsByName.Load(name); ok {
		return d.(*cache.DB)
	}
	d, _ := mapsByName.LoadOrStore(name, cache.NewDB(name))
	return d.(*cache.DB)
}

// lookupMaps returns the maps of the database called name, or nil if no
// database of that name was opened.
func lookupMaps(name string) *cache.DB {
	if d, ok := mapsByName.Load(name); ok {
		return d.(*cache.DB)
	}
	return nil
}

// allMaps returns the maps of every database opened so far, sorted by name.
func allMaps() []*cache.DB {
	var dbs []*cache.DB
	mapsByName.Range(func(_, v any) bool {
		dbs = append(dbs, v.(*cache.DB))
		return true
	})
	slices.SortFunc(dbs, func(a, b *cache.DB) int { return strings.Compare(a.Name(), b.Name()) })
	return dbs
}
