package pgfeed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/internal/busadapter"
	"github.com/go-idmap/idmap/internal/pgsecret"
)

// ErrClosed is returned by a closed feed, and reported as the last gap.
var ErrClosed = fmt.Errorf("pgfeed: closed: %w", bus.ErrClosed)

// ErrSyncTimeout is returned by a wait that the feed did not answer within
// its SyncTimeout.
var ErrSyncTimeout = errors.New("pgfeed: the change feed did not pass the commit in time")

// An Option configures a Feed. An option given a value outside its range
// (an empty or invalid name, a duration that is not positive) makes New
// return an error that names it ("pgfeed: SyncTimeout: 0s is not a
// positive duration"), before connecting; no value stands for the default,
// which is what leaving the option out gives (a nil Logger logs nothing).
// pgbus and redisbus follow the same rule.
type Option func(*options)

type options struct {
	busadapter.OptionCheck // the first option given a value outside its range

	publication string
	existing    bool
	tables      []string
	appName     string
	minBackoff  time.Duration
	maxBackoff  time.Duration
	status      time.Duration
	syncTimeout time.Duration
	logger      *slog.Logger
}

// Publication names the publication the feed reads. The feed creates it
// if it does not exist and adds to it the tables it should follow (Tables)
// that it lacks; this needs the ownership of the publication and of the
// tables (or a superuser). The default is "idmap_feed".
func Publication(name string) Option {
	return func(o *options) {
		if !validIdent(name) {
			o.Fail(busadapter.OptionError("pgfeed", "Publication", "%q is not a plain lower-case identifier", name))
			return
		}
		o.publication = name
	}
}

// ExistingPublication makes the feed read the publication name as it is:
// the feed neither creates nor alters it (create it yourself, for instance
// in a migration: CREATE PUBLICATION name FOR TABLE …). Tables is then
// ignored.
func ExistingPublication(name string) Option {
	return func(o *options) {
		if !validIdent(name) {
			o.Fail(busadapter.OptionError("pgfeed", "ExistingPublication", "%q is not a plain lower-case identifier", name))
			return
		}
		o.publication, o.existing = name, true
	}
}

// Tables lists the tables the feed follows ("table" or "schema.table",
// resolved with the connection's search_path). The default is every table
// of the schemas on the search_path that has a primary key (or another
// replica identity): a table without one cannot be published for UPDATE
// and DELETE, since PostgreSQL then refuses those statements (SQLSTATE
// 55000) to every writer. A partitioned table brings its partitions, and
// an inheritance parent its children.
func Tables(names ...string) Option {
	return func(o *options) {
		if len(names) == 0 {
			o.Fail(busadapter.OptionError("pgfeed", "Tables", "no table"))
			return
		}
		o.tables = append([]string(nil), names...)
	}
}

// ApplicationName sets the application_name of the feed's connections
// (default "idmap-pgfeed"): the replication connection, shown in
// pg_stat_replication, and the one that sends the probes (see Probe).
//
// The name must not be empty nor hold a NUL byte.
func ApplicationName(name string) Option {
	return func(o *options) {
		if o.Check(busadapter.ApplicationName("pgfeed", name)) {
			o.appName = name
		}
	}
}

// Backoff bounds the wait between two attempts to reconnect: it starts at
// min and doubles up to max (defaults 100ms and 5s); 0 < min <= max.
func Backoff(min, max time.Duration) Option {
	return func(o *options) {
		if o.Check(busadapter.BackoffBounds("pgfeed", min, max)) {
			o.minBackoff, o.maxBackoff = min, max
		}
	}
}

// StatusInterval is how often the feed confirms to the server the position
// it has read, which lets the server recycle WAL (default 10s; the server
// asks for it sooner when it needs it).
// It must be positive.
func StatusInterval(d time.Duration) Option {
	return func(o *options) {
		if o.Check(busadapter.PositiveInterval("pgfeed", "StatusInterval", d)) {
			o.status = d
		}
	}
}

// SyncTimeout bounds the wait of a commit for the feed (read-your-writes,
// see Syncer). Past it the wait returns ErrSyncTimeout, and idmap expires
// the whole database instead. Default 5s.
// It must be positive.
func SyncTimeout(d time.Duration) Option {
	return func(o *options) {
		if o.Check(busadapter.PositiveInterval("pgfeed", "SyncTimeout", d)) {
			o.syncTimeout = d
		}
	}
}

// Logger logs reconnections (Warn for the first failure of a series, Debug
// after) and skipped stream contents (Debug). Nil logs nothing.
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// A Feed is a change feed from PostgreSQL logical replication (pgoutput),
// as a bus.Bus that only subscribes: give it to idmap.WithSource. See the
// package documentation.
type Feed struct {
	o       options
	db      string // the idmap database name of every message
	cfg     *pgconn.Config
	secrets []string
	origin  string

	seq atomic.Uint64

	mu        sync.Mutex
	closed    bool
	started   bool
	pending   []bus.Handler            // protected by mu: subscribers not yet taken by the goroutine
	listening bool                     // protected by mu
	slot      string                   // protected by mu: the current slot, "" when not streaming
	waiters   map[string]chan struct{} // protected by mu: marks waited for
	cancel    context.CancelFunc
	done      chan struct{}
	log       *slog.Logger

	// Probes (bus.Prover): messages of a prefix of this feed's own, sent
	// on one ordinary connection, which probeSem guards.
	probePrefix string
	probeCfg    *pgconn.Config
	probeSem    chan struct{}  // capacity 1: held by the Probe that uses probeConn
	probeConn   *pgconn.PgConn // protected by probeSem; nil: not connected
	life        context.Context
	endLife     context.CancelFunc

	stall atomic.Pointer[stallHook] // tests: the stream reader stops reading
}

// stallHook stalls the stream reader (tests only, see export_test.go).
type stallHook struct {
	entered, release chan struct{}
	once             sync.Once
}

var (
	_ bus.Bus    = (*Feed)(nil)
	_ bus.Syncer = (*Feed)(nil)
	_ bus.Prover = (*Feed)(nil)
)

// New returns a feed of the PostgreSQL database at connString whose
// messages name the idmap database db (the Name it is opened with). It
// checks the server (wal_level must be logical) and makes sure of the
// publication, then returns; streaming starts at Subscribe.
func New(ctx context.Context, connString, db string, opts ...Option) (*Feed, error) {
	secrets := secretsOfString(connString)
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, newError("parsing the connection string", err, secrets...)
	}
	return NewFromConfig(ctx, cfg, db, opts...)
}

// NewFromConfig is New with a parsed configuration. The feed copies cfg.
func NewFromConfig(ctx context.Context, cfg *pgconn.Config, db string, opts ...Option) (*Feed, error) {
	if cfg == nil {
		return nil, errors.New("pgfeed: nil configuration")
	}
	if db == "" {
		return nil, errors.New("pgfeed: no idmap database name (the Name the database is opened with)")
	}
	o := options{publication: "idmap_feed", appName: "idmap-pgfeed", minBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second, status: 10 * time.Second, syncTimeout: 5 * time.Second}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.Err != nil {
		return nil, o.Err
	}
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	c.RuntimeParams["replication"] = "database"
	c.RuntimeParams["application_name"] = o.appName
	f := &Feed{o: o, db: db, cfg: c, secrets: secretsOf(c), origin: "pgfeed:" + randomHex(8), waiters: map[string]chan struct{}{}}
	f.probePrefix = probePrefixBase + randomHex(8)
	f.probeCfg = cfg.Copy()
	if f.probeCfg.RuntimeParams == nil {
		f.probeCfg.RuntimeParams = map[string]string{}
	}
	delete(f.probeCfg.RuntimeParams, "replication")
	f.probeCfg.RuntimeParams["application_name"] = o.appName
	f.probeSem = make(chan struct{}, 1)
	f.life, f.endLife = context.WithCancel(context.Background())
	f.log = o.logger
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	conn, err := f.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := f.prepare(ctx, conn); err != nil {
		return nil, err
	}
	return f, nil
}

// Publish does nothing: the feed only reads. It returns ErrClosed once
// the feed is closed.
func (f *Feed) Publish(context.Context, []bus.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	return nil
}

// Subscribe adds a subscriber and, at the first call, starts streaming on
// a replication connection of its own; it returns without waiting for the
// server. The feed reports h.Gap(bus.Gap{Resumed: true}) once a new
// temporary replication slot streams (a subscriber that comes later is
// told within half a second), then, at the COMMIT of each transaction
// that changed a published table, calls h.Message once per table it
// changed (keys of the rows, or the whole table), in commit order. When
// the connection fails, it reports h.Gap(bus.Gap{Err: err}) once,
// reconnects with backoff on a new slot (which starts at the server's
// current position: what committed in between is not delivered) and
// reports h.Gap(bus.Gap{Resumed: true}). Every subscriber is served by the
// one slot, from one goroutine, in order.
func (f *Feed) Subscribe(h bus.Handler) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.pending = append(f.pending, h)
	if f.started {
		return nil
	}
	f.started = true
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go f.run(ctx)
	return nil
}

// Close stops the feed: its connection ends and its temporary slot with
// it. A subscriber that was listening receives a last gap (ErrClosed).
func (f *Feed) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	f.releaseWaiters()
	// A probe in flight ends at once; then its connection is closed.
	f.endLife()
	f.probeSem <- struct{}{}
	if f.probeConn != nil {
		closeQuietly(f.probeConn)
		f.probeConn = nil
	}
	<-f.probeSem
	return nil
}

// Slot returns the name of the temporary replication slot the feed
// streams from, or "" while it is not streaming.
func (f *Feed) Slot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slot
}

// Database returns the idmap database name the feed's messages carry.
func (f *Feed) Database() string { return f.db }

// markPrefix is the prefix of the logical decoding messages that mark a
// commit for read-your-writes.
const markPrefix = "idmap.pgfeed.mark"

// SyncStatement returns the statement that marks, in the stream, the point
// after everything the connection it runs on has committed, and the wait
// for that mark (see bus.Syncer). The statement is
// pg_logical_emit_message, transactional: it commits as its own
// transaction when run in autocommit, after the one it follows.
func (f *Feed) SyncStatement() (string, []any, func(context.Context) error) {
	mark := randomHex(12)
	ch := make(chan struct{})
	f.mu.Lock()
	// Not streaming now (before the mark, so after the commit): the
	// subscriber serves nothing from its maps until the feed is back, and
	// flushes them then; there is nothing to wait for.
	listening := f.listening
	if listening {
		f.waiters[mark] = ch
	}
	f.mu.Unlock()
	wait := func(ctx context.Context) error {
		if !listening {
			return nil
		}
		defer func() {
			f.mu.Lock()
			delete(f.waiters, mark)
			f.mu.Unlock()
		}()
		t := time.NewTimer(f.o.syncTimeout)
		defer t.Stop()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return ErrSyncTimeout
		}
	}
	// synchronous_commit on for this one transaction: the server sends a
	// logical stream only as far as the WAL is flushed, which with
	// synchronous_commit off waits for the WAL writer (wal_writer_delay).
	return "SELECT set_config('synchronous_commit', 'on', true), pg_logical_emit_message(true, '" + markPrefix + "', $1::text)", []any{mark}, wait
}

// probePrefixBase begins the prefix of a feed's probes; the rest is an id
// of the feed's own, so that the feeds of other instances, which decode the
// same messages, ignore them.
const probePrefixBase = "idmap.pgfeed.probe."

// Probe proves delivery (bus.Prover): it runs, on an ordinary connection
// of the feed's own (opened at the first probe, kept for the next ones),
// a logical decoding message of a prefix of this feed's own that carries
// token, in a transaction of its own with synchronous_commit on. The feed
// decodes it at its commit, behind every transaction that committed
// before it, and hands token to each subscriber's Handler.Probe. idmap
// probes every quarter of its lease (idmap.Lease): a database attached to
// the feed serves from its maps only while the feed has proven delivery
// within the lease. Probe returns once the message has committed, or ctx
// is done; it fails at once while the feed does not stream (a gap).
// Concurrent calls wait for each other.
func (f *Feed) Probe(ctx context.Context, token uint64) error {
	f.mu.Lock()
	closed, listening := f.closed, f.listening
	f.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !listening {
		return errors.New("pgfeed: probe: the feed is not streaming")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(f.life, cancel)
	defer stop()
	select {
	case f.probeSem <- struct{}{}:
	case <-ctx.Done():
		return f.probeError(ctx.Err())
	}
	defer func() { <-f.probeSem }()
	if f.life.Err() != nil {
		return ErrClosed
	}
	if f.probeConn == nil || f.probeConn.IsClosed() {
		if f.probeConn != nil {
			closeQuietly(f.probeConn)
			f.probeConn = nil
		}
		conn, err := pgconn.ConnectConfig(ctx, f.probeCfg)
		if err != nil {
			return newError("probe: connecting", f.probeError(err), f.secrets...)
		}
		f.probeConn = conn
	}
	// synchronous_commit on: the server streams a commit only once its
	// WAL is flushed. (A non-transactional message, which takes no
	// transaction id, would wait for the WAL writer on PostgreSQL 14–16:
	// up to wal_writer_delay, and more.)
	q := "SELECT set_config('synchronous_commit', 'on', true), pg_logical_emit_message(true, '" +
		f.probePrefix + "', '" + strconv.FormatUint(token, 10) + "')"
	_, err := f.probeConn.Exec(ctx, q).ReadAll()
	if err != nil {
		if _, server := errors.AsType[*pgconn.PgError](err); !server {
			// The connection may be in any state: start over next time.
			closeQuietly(f.probeConn)
			f.probeConn = nil
		}
		return newError("probe", f.probeError(err), f.secrets...)
	}
	return nil
}

// probeError is ErrClosed for a probe that Close ended.
func (f *Feed) probeError(err error) error {
	if f.life.Err() != nil {
		return ErrClosed
	}
	return err
}

func closeQuietly(c *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// delivered wakes the waiter of mark, if any.
func (f *Feed) delivered(mark string) {
	f.mu.Lock()
	ch := f.waiters[mark]
	delete(f.waiters, mark)
	f.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// releaseWaiters wakes every waiter: at a gap (the database is flushed and
// paused until the feed is back) and at Close.
func (f *Feed) releaseWaiters() {
	f.mu.Lock()
	ws := f.waiters
	f.waiters = map[string]chan struct{}{}
	f.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

func (f *Feed) setState(listening bool, slot string) {
	f.mu.Lock()
	f.listening, f.slot = listening, slot
	f.mu.Unlock()
}

func (f *Feed) connect(ctx context.Context) (*pgconn.PgConn, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, f.cfg)
	if err != nil {
		return nil, newError("connecting for replication", err, f.secrets...)
	}
	return conn, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validIdent reports whether s is a plain lower-case identifier, which
// needs no quoting.
func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// newError returns "pgfeed: what: err" with the password and anything that
// looks like one removed; it unwraps only to causes that carry no
// connection settings (context errors, the server's *pgconn.PgError,
// bus.ErrClosed).
func newError(what string, err error, secrets ...string) error {
	return pgsecret.NewError("pgfeed", what, err, secrets, bus.ErrClosed)
}

// secretsOf returns the passwords of c.
func secretsOf(c *pgconn.Config) []string { return pgsecret.Of(c) }

// secretsOfString returns what may be passwords in a connection string
// that could not be parsed.
func secretsOfString(connString string) []string { return pgsecret.OfString(connString) }
