package pgbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/internal/busadapter"
)

// Defaults of the options.
const (
	DefaultChannel         = "idmap"
	DefaultHeartbeat       = 5 * time.Second
	DefaultApplicationName = "idmap-pgbus-listener"
	DefaultMinBackoff      = 50 * time.Millisecond
	DefaultMaxBackoff      = 2 * time.Second
	DefaultQueueSize       = 1024
)

// defaultConnectTimeout bounds a connection attempt when the connection
// string sets no connect_timeout.
const defaultConnectTimeout = 10 * time.Second

// drainTimeout bounds how long Close waits for messages queued by Publish.
const drainTimeout = 5 * time.Second

// publishAttempts is how many times a batch queued by Publish is tried
// before it is dropped (and logged).
const publishAttempts = 5

// ErrClosed is returned by a closed Bus, and is the error of the last Gap
// that Close reports to a listening subscription. errors.Is(ErrClosed,
// bus.ErrClosed) holds.
var ErrClosed = fmt.Errorf("pgbus: %w", bus.ErrClosed)

// ErrQueueFull is returned (wrapped) by Publish when its queue of messages
// waiting to be sent is full.
var ErrQueueFull = errors.New("pgbus: publish queue full")

// An Option configures a Bus. An option given a value outside its range
// (a size or duration that is not positive, an empty or invalid name, a nil
// configuration, a short key) makes New and NewFromConfig return an error
// that names it ("pgbus: MaxMessageSize: 0 is not a positive size"): no
// value stands for the default, which is what leaving the option out
// gives. redisbus's options follow the same rule.
type Option func(*options)

type options struct {
	busadapter.OptionCheck // the first option given a value outside its range

	channel     string
	heartbeat   time.Duration
	pingTimeout time.Duration // 0: not given, the heartbeat
	appName     string        // "": not given, the connection string's, else DefaultApplicationName
	minBackoff  time.Duration
	maxBackoff  time.Duration
	queueSize   int
	logger      *slog.Logger
	maxSize     int             // bus.DefaultMaxMessageSize unless given
	key         []byte          // nil: messages are not authenticated
	listenCfg   *pgx.ConnConfig // ListenerConfig; nil: the bus's configuration
}

// Channel sets the NOTIFY channel, DefaultChannel ("idmap") by default.
// Every instance that shares a database must use the same channel; it is
// used verbatim (case included), is not empty, and is at most 63 bytes
// long, without a NUL byte.
func Channel(name string) Option {
	return func(o *options) {
		switch {
		case name == "":
			o.Fail(busadapter.OptionError("pgbus", "Channel", "empty channel name"))
		case len(name) > 63:
			o.Fail(busadapter.OptionError("pgbus", "Channel", "channel name %.20q… is longer than 63 bytes", name))
		case strings.IndexByte(name, 0) >= 0:
			o.Fail(busadapter.OptionError("pgbus", "Channel", "channel name contains a NUL byte"))
		default:
			o.channel = name
		}
	}
}

// Heartbeat sets how long the listener waits for a notification before it
// pings the server to check the connection, DefaultHeartbeat (5 s) by
// default; it must be positive. A dead or stalled connection is detected
// within about Heartbeat + PingTimeout.
func Heartbeat(d time.Duration) Option {
	return func(o *options) {
		if o.Check(busadapter.PositiveInterval("pgbus", "Heartbeat", d)) {
			o.heartbeat = d
		}
	}
}

// PingTimeout sets how long the heartbeat's ping (and a probe) may take
// before the connection is deemed lost, positive; the Heartbeat interval
// when PingTimeout is not given.
func PingTimeout(d time.Duration) Option {
	return func(o *options) {
		if o.Check(busadapter.PositiveInterval("pgbus", "PingTimeout", d)) {
			o.pingTimeout = d
		}
	}
}

// ApplicationName sets the application_name of the listening connection
// (as pg_stat_activity shows it): not empty, without a NUL byte. Without
// it, the name is the connection string's application_name, else
// DefaultApplicationName ("idmap-pgbus-listener").
func ApplicationName(name string) Option {
	return func(o *options) {
		if o.Check(busadapter.ApplicationName("pgbus", name)) {
			o.appName = name
		}
	}
}

// Backoff sets the bounds of the delay between two attempts to reconnect
// the listener (it doubles from min to max), 50 ms and 2 s by default;
// 0 < min <= max.
func Backoff(min, max time.Duration) Option {
	return func(o *options) {
		if o.Check(busadapter.BackoffBounds("pgbus", min, max)) {
			o.minBackoff, o.maxBackoff = min, max
		}
	}
}

// QueueSize sets how many calls to Publish may wait to be sent,
// DefaultQueueSize by default; it must be positive.
func QueueSize(n int) Option {
	return func(o *options) {
		if o.Check(busadapter.PositiveSize("pgbus", "QueueSize", n)) {
			o.queueSize = n
		}
	}
}

// Logger sets where the bus logs lost and resumed subscriptions, dropped
// payloads and failures to publish. By default the bus logs where the
// first database opened with it logs (idmap.Logger, which idmap tells it
// through bus.Attacher), and nothing if that database logs nothing, as
// redisbus does. A nil logger logs nothing. Nothing it logs contains the
// connection's password.
func Logger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		o.logger = l
	}
}

// ListenerConfig sets the configuration of the listening connections apart
// from that of the bus's own publishing connection (which New's connection
// string or NewFromConfig's configuration sets): another role, timeouts or
// TLS settings for each direction, as redisbus.SubscribeOptions does. cfg
// (made by pgx.ParseConfig) is copied; it must reach the same database,
// and must not be nil (leave the option out for the bus's configuration).
// ApplicationName still names the listener.
func ListenerConfig(cfg *pgx.ConnConfig) Option {
	return func(o *options) {
		if cfg == nil {
			o.Fail(busadapter.OptionError("pgbus", "ListenerConfig", "nil *pgx.ConnConfig"))
			return
		}
		o.listenCfg = cfg.Copy()
	}
}

// MaxMessageSize bounds the payloads the subscriptions decode, in bytes,
// positive (bus.DefaultMaxMessageSize, 64 KiB, by default; PostgreSQL
// itself keeps NOTIFY payloads under 8,000 bytes). A longer payload is
// dropped, counted (Dropped) and logged, without stalling the
// subscription.
func MaxMessageSize(n int) Option {
	return func(o *options) {
		if o.Check(busadapter.PositiveSize("pgbus", "MaxMessageSize", n)) {
			o.maxSize = n
		}
	}
}

// Key makes the bus authenticate its messages with HMAC-SHA256 under key:
// what it publishes carries a tag, and its subscriptions drop (count and
// log) every payload without a valid tag. Give every instance that shares
// the channel the same key (at least 16 bytes; 32 random bytes are best);
// an instance without it publishes what the others drop. The trust model:
// docs/buses.md, "The bus: who can publish, and what a message can do".
func Key(key []byte) Option {
	return func(o *options) {
		if o.Check(busadapter.KeyLength("pgbus", key)) {
			o.key = append([]byte(nil), key...)
		}
	}
}

// Bus is a bus.ConnPublisher on PostgreSQL's LISTEN/NOTIFY. idmap publishes
// with the SQL that Statement returns, on the writer's own connection and
// inside its transaction, so that a message is sent if and only if the
// write commits; each Subscribe listens on a dedicated connection. Publish
// sends NOTIFY from a connection of the bus's own.
//
// A Bus is safe for concurrent use. Close it when done.
type Bus struct {
	cfg       *pgx.ConnConfig // base configuration, never modified
	listenCfg *pgx.ConnConfig // the listeners' configuration, never modified
	o         options
	logger    busadapter.Logger // where to log; Attach sets it when no Logger was given
	secrets   []string
	probeChan string // bus.ProbeChannelPrefix + an id of this bus's own

	subsMu sync.Mutex
	subs   map[*listener]struct{} // protected by subsMu: the running subscriptions, for Probe

	listenCtx    context.Context // canceled by Close: stops the listeners
	stopListen   context.CancelFunc
	publishCtx   context.Context // canceled once the queue is drained (or drainTimeout)
	stopPublish  context.CancelFunc
	wg           sync.WaitGroup // every goroutine of the bus
	mu           sync.Mutex
	closed       bool          // protected by mu
	queue        chan []string // encoded messages; protected by mu (sends and close)
	publisherRun bool          // protected by mu

	drops bus.DropCounter // received payloads dropped
}

// Dropped returns how many received payloads the subscriptions dropped,
// by cause: over MaxMessageSize, without a valid tag (with a Key), not a
// message.
func (b *Bus) Dropped() bus.Drops { return b.drops.Load() }

var (
	_ bus.ConnPublisher = (*Bus)(nil)
	_ bus.Prover        = (*Bus)(nil)
	_ bus.Attacher      = (*Bus)(nil)
	_ bus.Dropper       = (*Bus)(nil)
)

// New returns a bus on the PostgreSQL database that connString names (a URL
// or key=value string, as pgx.ParseConfig reads it). It connects once,
// within ctx, to check that the server accepts the connection, so that a
// wrong host or password is reported here rather than by a subscription
// that never listens. Connect the bus to PostgreSQL directly: LISTEN does
// not work through a pooler in transaction mode.
func New(ctx context.Context, connString string, opts ...Option) (*Bus, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		// The parse error holds the connection string: keep nothing of it
		// but its redacted text.
		return nil, newError("parsing the connection string", err, secretsOfString(connString)...)
	}
	return NewFromConfig(ctx, cfg, opts...)
}

// NewFromConfig is New for a configuration made by pgx.ParseConfig (which
// it copies, and does not modify).
func NewFromConfig(ctx context.Context, cfg *pgx.ConnConfig, opts ...Option) (*Bus, error) {
	if cfg == nil {
		return nil, errors.New("pgbus: nil configuration")
	}
	o := options{
		channel:    DefaultChannel,
		heartbeat:  DefaultHeartbeat,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		queueSize:  DefaultQueueSize,
		maxSize:    bus.DefaultMaxMessageSize,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Err != nil {
		return nil, o.Err
	}
	if o.pingTimeout == 0 {
		o.pingTimeout = o.heartbeat
	}
	b := &Bus{cfg: cfg.Copy(), o: o, probeChan: busadapter.ProbeChannel(), subs: map[*listener]struct{}{}}
	b.listenCfg = b.cfg
	if o.listenCfg != nil {
		b.listenCfg = o.listenCfg
	}
	b.logger.Init(o.logger, o.channel)
	b.secrets = append(secretsOf(b.cfg), secretsOf(b.listenCfg)...)

	conn, err := b.connect(ctx, false)
	if err != nil {
		return nil, err
	}
	closeConn(conn)

	b.listenCtx, b.stopListen = context.WithCancel(context.Background())
	b.publishCtx, b.stopPublish = context.WithCancel(context.Background())
	b.queue = make(chan []string, o.queueSize)
	return b, nil
}

// Channel returns the bus's NOTIFY channel.
func (b *Bus) Channel() string { return b.o.channel }

// Statement returns the SQL that publishes msgs on the bus's channel,
//
//	SELECT pg_notify($1, $2), pg_notify($1, $3), …
//
// with the channel and each message's encoding (bus.Message.Encode) as
// text arguments. It returns "" and no arguments for no messages.
func (b *Bus) Statement(msgs []bus.Message) (query string, args []any) {
	return statement(b.o.channel, msgs, b.o.key)
}

func statement(channel string, msgs []bus.Message, key []byte) (string, []any) {
	payloads := make([]string, len(msgs))
	for i, m := range msgs {
		payloads[i] = string(bus.Sign(m.Encode(), key))
	}
	return statementOf(channel, payloads)
}

// statementOf returns the statement that sends payloads on channel.
func statementOf(channel string, payloads []string) (string, []any) {
	if len(payloads) == 0 {
		return "", nil
	}
	var q strings.Builder
	q.Grow(8 + len(payloads)*24)
	q.WriteString("SELECT ")
	args := make([]any, 0, len(payloads)+1)
	args = append(args, channel)
	for i, p := range payloads {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("pg_notify($1, $")
		q.WriteString(strconv.Itoa(i + 2))
		q.WriteByte(')')
		args = append(args, p)
	}
	return q.String(), args
}

// Publish queues msgs and returns: a goroutine of the bus sends them with
// NOTIFY on a connection of its own, retrying a few times if that fails.
// (idmap does not call Publish on a Bus: it executes Statement in the
// writer's transaction instead.) It returns an error only when the bus is
// closed or its queue is full.
func (b *Bus) Publish(_ context.Context, msgs []bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	payloads := make([]string, len(msgs))
	for i, m := range msgs {
		payloads[i] = string(bus.Sign(m.Encode(), b.o.key))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if !b.publisherRun {
		b.publisherRun = true
		b.wg.Add(1)
		go b.publisher()
	}
	select {
	case b.queue <- payloads:
		return nil
	default:
		return ErrQueueFull
	}
}

// publisher sends what Publish queued until the queue is closed and
// drained, or publishCtx is canceled.
func (b *Bus) publisher() {
	defer b.wg.Done()
	ctx := b.publishCtx
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	for first := range b.queue {
		// Send what is waiting together, up to a bound.
		batch := first
	more:
		for len(batch) < 64 {
			select {
			case next, ok := <-b.queue:
				if !ok {
					break more
				}
				batch = append(batch, next...)
			default:
				break more
			}
		}
		if ctx.Err() != nil {
			b.log().Warn("pgbus: closed before sending published messages; dropped", "messages", len(batch))
			continue
		}
		q, args := statementOf(b.o.channel, batch)
		backoff := b.o.minBackoff
		for attempt := 1; ; attempt++ {
			var err error
			if conn == nil {
				conn, err = b.connect(ctx, false)
			}
			if err == nil {
				ectx, cancel := context.WithTimeout(ctx, b.connectTimeout())
				_, err = conn.Exec(ectx, q, args...)
				cancel()
				if err != nil {
					err = newError("publishing", err, b.secrets...)
				}
			}
			if err == nil {
				break
			}
			if conn != nil {
				closeConn(conn)
				conn = nil
			}
			if attempt >= publishAttempts || ctx.Err() != nil {
				b.log().Error("pgbus: messages dropped", "messages", len(batch), "attempts", attempt, "err", err.Error())
				break
			}
			b.log().Warn("pgbus: publishing failed; retrying", "attempt", attempt, "err", err.Error())
			if !busadapter.Sleep(ctx, backoff) {
				b.log().Error("pgbus: messages dropped", "messages", len(batch), "attempts", attempt, "err", err.Error())
				break
			}
			backoff = min(2*backoff, b.o.maxBackoff)
		}
	}
}

// Close stops the subscriptions and waits for their goroutines (do not call
// it from a Handler), after sending what Publish queued (for at most a few
// seconds). It is idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.queue)
	b.mu.Unlock()

	b.stopListen()
	t := time.AfterFunc(drainTimeout, b.stopPublish)
	b.wg.Wait()
	t.Stop()
	b.stopPublish()
	return nil
}

func (b *Bus) connectTimeout() time.Duration {
	if b.cfg.ConnectTimeout > 0 {
		return b.cfg.ConnectTimeout
	}
	return defaultConnectTimeout
}

// connect opens a connection, the listener's (with its application_name)
// or another.
func (b *Bus) connect(ctx context.Context, listener bool) (*pgx.Conn, error) {
	cfg := b.cfg
	if listener {
		cfg = b.listenCfg.Copy()
		name := b.o.appName
		if name == "" {
			name = cfg.RuntimeParams["application_name"]
		}
		if name == "" {
			name = DefaultApplicationName
		}
		cfg.RuntimeParams["application_name"] = name
		// pgx buffers notifications (for WaitForNotification) only when
		// no other callback takes them.
		cfg.OnNotification = nil
		// The heartbeat's timeouts must only interrupt the read, not send
		// the server a cancel request each time.
		cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, b.connectTimeout())
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, newError("connecting to "+b.where(), err, b.secrets...)
	}
	return conn, nil
}

// log returns the bus's logger.
func (b *Bus) log() *slog.Logger { return b.logger.Load() }

// Attach is called by idmap for each database opened with the bus: unless
// Logger was given, the bus logs where the first database with a logger
// logs.
func (b *Bus) Attach(a bus.Attachment) { b.logger.Attach(a) }

// where describes the server for errors and logs, without the password.
func (b *Bus) where() string {
	return fmt.Sprintf("host=%s port=%d user=%s database=%s", b.cfg.Host, b.cfg.Port, b.cfg.User, b.cfg.Database)
}

// closeConn closes conn, waiting at most a second for the server.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
