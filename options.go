package idmap

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/signals"
)

// An Option configures a database opened with Open or NewConnector (a
// database opened with sql.Open of an "idmap+…" driver gets the defaults).
//
// The options below come in this order: the database's identity (Name,
// Dialect), invalidation (NoAutoFlush, ExactExpiry, TriggerWrites), the
// shared map (NoSharedMap, MaxAge, MaxStrongEntries), buses (WithBus,
// WithSource, Lease), logging (Logger); then the options of Model and
// those of NewChangeLog (ChangeLogOption). One
// naming rule: an option is named for what it sets; With… attaches an
// outside component the database then uses; No… turns a default behaviour
// off. Each says its default; a database given no option gets them all.
type Option func(*config)

// config is what the options set, read once when the database is opened.
type config struct {
	name       string
	dialect    dialect
	hasDialect bool
	noFlush    [8]bool             // by signals.Reason: automatic flushes turned off
	triggers   map[string][]string // TriggerWrites: table → tables its triggers write
	bus        bus.Bus             // WithBus
	sources    []bus.Bus           // WithSource
	maxAge     time.Duration       // MaxAge
	maxStrong  int                 // MaxStrongEntries
	logger     *slog.Logger        // Logger
	noShared   bool                // NoSharedMap
	lease      time.Duration       // Lease
	exact      bool                // ExactExpiry
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

// ExactExpiry makes a write on SQLite expire exactly the rows that the
// engine's preupdate hook reports it changed (modernc.org/sqlite, or
// mattn/go-sqlite3 built with the tag sqlite_preupdate_hook): an UPDATE or
// DELETE by any condition, the rows that triggers and foreign-key actions
// write, no more. Without it (the default), a write expires what the
// statement reader infers (its keys, else the table; a table with triggers,
// the database) and, in addition, every row the engine reports. It has no
// effect on other engines, with mattn's update hook only, or on a database
// with virtual tables (no hook reports their rows).
func ExactExpiry() Option { return func(c *config) { c.exact = true } }

// TriggerWrites declares what the triggers on table write, so that a write
// to table expires those tables instead of the whole database. Without it,
// a table with triggers widens every write to the whole database. The same
// holds for a view that takes writes (declare its tables:
// TriggerWrites("users_v", "users")) and a PostgreSQL table with rules.
func TriggerWrites(table string, writes ...string) Option {
	return func(c *config) {
		if c.triggers == nil {
			c.triggers = make(map[string][]string)
		}
		t := strings.ToLower(baseTable(table))
		for _, w := range writes {
			c.triggers[t] = append(c.triggers[t], strings.ToLower(baseTable(w)))
		}
		if writes == nil {
			c.triggers[t] = []string{}
		}
	}
}

// NoSharedMap turns the database's shared map off: what is loaded with a
// context that carries no scope is stored nowhere, and Get with such a
// context always queries. Scopes work as before. Use it where sessions do
// not all see the same rows (PostgreSQL's row-level security, a role or
// search_path set per session): one session's row must not be served to
// another, and a scope belongs to one unit of work.
func NoSharedMap() Option { return func(c *config) { c.noShared = true } }

// MaxAge expires entries of the database's shared maps once they are older
// than d (from when the query that loaded them began), whatever writes
// were seen: a safety net for writers no bus sees (another program, a
// console) and for messages lost. An entry expires between d and d×9/8
// after its load. Scopes are not affected. When databases of one name set
// different ages, the smallest holds.
func MaxAge(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.err = fmt.Errorf("idmap: MaxAge: %v is not a positive duration", d)
			return
		}
		c.maxAge = d
	}
}

// MaxStrongEntries bounds how many objects the database's shared maps hold
// strongly (types mapped with StrongRefs; weak entries are bounded by the
// garbage collector, scopes by their unit of work). Past n, the entries
// that no lookup found for longest go first (the CLOCK approximation of
// least recently used: an entry found since it was last considered gets a
// second chance). Dropped entries are counted in Stats.Evicted.
func MaxStrongEntries(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.err = fmt.Errorf("idmap: MaxStrongEntries: %d is not a positive bound", n)
			return
		}
		c.maxStrong = n
	}
}

// WithBus makes the database publish its writes on b and expire what other
// instances' messages name. Instances sharing a database must open it under
// the same Name. Until b reports that it listens, and from the moment it
// reports a lost subscription until it listens again, nothing of this
// database is served from its maps (every Get queries, every Bind
// refreshes) and its shared maps store no load: a message missed then
// could leave a stale row. The loss and the resumption each flush the
// database, with signals of reason signals.BusGap, and signals.Bus tells
// them apart (BusLost, BusListening). A bus that proves delivery
// (bus.Prover, as both adapters do) holds a lease (see Lease): the maps
// serve only while its newest proof is younger than the lease. Ready and
// WaitReady tell when the maps serve. When b is a bus.Attacher, idmap
// tells it the database's name and Logger. See package bus for the
// delivery window, and MaxAge for a safety net.
func WithBus(b bus.Bus) Option {
	return func(c *config) {
		if b == nil {
			c.err = errors.New("idmap: WithBus: nil bus")
			return
		}
		c.bus = b
	}
}

// WithSource makes the database expire what src delivers, without
// publishing on it: a change feed that reports every committed change,
// whoever made it (package github.com/go-idmap/idmap/bus/pgfeed for
// PostgreSQL). Its messages follow the rules of a bus's (see WithBus):
// they expire through the same epochs as local writes, so that a load in
// flight across a change is not kept; until src reports that it listens,
// and from a lost subscription until it listens again, nothing of the
// database is served from its maps. WithSource may be given several
// times, and with WithBus. A source that proves delivery (bus.Prover, as
// a feed does) holds the database's lease as a bus does (see Lease): the
// maps serve only while its newest proof is younger than the lease.
//
// When src is a bus.Syncer (a feed is), a commit whose effects idmap's
// statement reader cannot bound (a write to a table with triggers, rules
// or a view, a call to a function that writes, a statement it cannot
// read) returns only once src has delivered that commit: the program
// reads its own writes, side effects included, as soon as Commit (or the
// autocommit Exec) returns. A commit the reader understands does not
// wait.
func WithSource(src bus.Bus) Option {
	return func(c *config) {
		if src == nil {
			c.err = errors.New("idmap: WithSource: nil source")
			return
		}
		c.sources = append(c.sources, src)
	}
}

// DefaultLease is the lease of a database whose bus proves delivery,
// unless Lease sets another.
const DefaultLease = 500 * time.Millisecond

// Lease sets how long after the newest proof of delivery of its bus the
// database may serve from its maps (DefaultLease, 500 ms, by default): a
// write whose message the bus's server has accepted is seen by every
// instance within d, or those instances serve nothing from their maps
// (every Get queries) until their bus proves delivery again. It applies
// to buses that prove delivery (bus.Prover); idmap probes them every d/4.
// When databases of one name set different leases, the smallest holds.
//
// Leases bound how long a database serves from its maps without news from
// its bus. A bus that can prove delivery (bus.Prover: both adapters can,
// and so can the change feed of package bus/pgfeed, given to WithSource)
// is probed every quarter of the lease: a probe comes back through the
// subscription behind every message the server accepted before it. The
// maps serve only while the newest proof's probe was sent less than a
// lease ago; each lookup compares the clock with that deadline, so the
// bound does not depend on when a timer fires. Whatever stalls delivery
// (a network that stops forwarding, a subscriber connection that the
// server cut, a listener that hangs), no read is served from a map later
// than a lease after the server accepted a newer write's message.
func Lease(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.err = fmt.Errorf("idmap: Lease: %v is not a positive duration", d)
			return
		}
		c.lease = d
	}
}

// Logger logs, at level Debug, the invalidations (local and remote) and
// flushes of the database, and at level Warn, failures to publish on its
// bus, lost subscriptions and lease expiries. Records carry the database's
// name, never its DSN. A nil logger logs nothing (the default). The
// adapters (pgbus, redisbus) log where the database logs unless given a
// logger of their own.
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// A ModelOption configures a type registered with Model.
type ModelOption func(*modelConfig)

// modelConfig is what the ModelOptions given to Model set: the table (Table,
// else TableName's) and StrongRefs.
type modelConfig struct {
	table  string
	strong bool
}

// Table sets the table of a model, overriding its TableName method.
func Table(name string) ModelOption { return func(c *modelConfig) { c.table = name } }

// StrongRefs makes the shared maps hold the model's objects strongly, until
// they are flushed, instead of weakly (the default).
func StrongRefs() ModelOption { return func(c *modelConfig) { c.strong = true } }

// A ChangeLogOption configures a ChangeLog.
type ChangeLogOption func(*ChangeLog)

// PollInterval is how often the change log is read (default 50ms): the
// delay between another program's commit and its expiry here is about
// half of it on average, and at most the interval plus one read.
func PollInterval(d time.Duration) ChangeLogOption {
	return func(c *ChangeLog) {
		if d > 0 {
			c.interval = d
		}
	}
}

// Retention makes this reader prune the log: every Retention/10 (at
// least every second) it deletes the rows older than d (never the newest
// row). Give it to one instance (more only repeat the work). A reader
// whose cursor is behind the pruned rows reports a gap. Default: no
// pruning (call Prune yourself, for instance from a scheduled job).
func Retention(d time.Duration) ChangeLogOption { return func(c *ChangeLog) { c.retention = d } }

// HoleTimeout bounds how long a sequence number may stay missing below
// rows already read (its transaction has not committed yet, or rolled
// back) while its transaction is still open: past it, the reader
// reports a gap and settles again. Default 30s.
func HoleTimeout(d time.Duration) ChangeLogOption {
	return func(c *ChangeLog) {
		if d > 0 {
			c.holeTimeout = d
		}
	}
}

// ChangeLogSyncTimeout bounds the wait of a commit for the reader
// (read-your-writes, see bus.Syncer); past it, idmap expires the whole
// database instead. Default 5s.
func ChangeLogSyncTimeout(d time.Duration) ChangeLogOption {
	return func(c *ChangeLog) {
		if d > 0 {
			c.syncTimeout = d
		}
	}
}

// ChangeLogLogger logs the reader's lost and resumed reads.
func ChangeLogLogger(l *slog.Logger) ChangeLogOption { return func(c *ChangeLog) { c.logger = l } }
