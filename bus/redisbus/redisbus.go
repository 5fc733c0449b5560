package redisbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/internal/busadapter"
)

var (
	_ bus.Bus      = (*Bus)(nil)
	_ bus.Prover   = (*Bus)(nil)
	_ bus.Attacher = (*Bus)(nil)
	_ bus.Dropper  = (*Bus)(nil)
)

// Defaults of the options.
const (
	DefaultChannel      = "idmap"
	DefaultOutboxSize   = 1024
	DefaultHeartbeat    = 3 * time.Second
	DefaultDrainTimeout = time.Second
	// DefaultClientName names the subscription connections (CLIENT
	// SETNAME), unless the subscription's redis.Options or ClientName set
	// another name.
	DefaultClientName = "idmap-redisbus-listener"
)

// Bounds of the reconnection backoff, of the publisher and of each
// subscription: the n-th consecutive failure waits about
// minBackoff×2^(n-1), at most maxBackoff (±20 %).
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// maxBatch bounds the messages sent in one pipeline.
const maxBatch = 128

// ErrClosed is returned (wrapped, so errors.Is(err, bus.ErrClosed) holds
// too) by Publish and Subscribe on a closed Bus.
var ErrClosed = fmt.Errorf("redisbus: %w", bus.ErrClosed)

// A Bus is a bus.Bus on Redis pub/sub. It is safe for concurrent use. It
// publishes after commit (it is not a bus.ConnPublisher).
type Bus struct {
	client    *redis.Client // publishes, and sends the probes
	subClient *redis.Client // subscribes
	channel   string
	probeChan string // bus.ProbeChannelPrefix + an id of this bus's own
	hb        time.Duration
	drain     time.Duration
	logger    busadapter.Logger // where to log; replaced by Attach when no Logger was given
	passwords []string          // only to keep them out of errors and logs
	maxSize   int               // bound on a received payload
	key       []byte            // nil: messages are not authenticated
	drops     bus.DropCounter

	out          *outbox
	sendFailures atomic.Uint64 // attempts to publish what is queued that failed

	ctx    context.Context // canceled when Close stops everything
	cancel context.CancelFunc

	senderDone chan struct{} // closed when the sender has returned

	mu     sync.Mutex
	closed bool          // protected by mu
	subs   []*subscriber // protected by mu
	wg     sync.WaitGroup
}

// An Option configures a Bus. An option given a value outside its range
// (a size or duration that is not positive, an empty name, a nil
// configuration, a short key) makes New, NewURL and NewContext return an
// error that names it ("redisbus: MaxMessageSize: 0 is not a positive
// size"): no value stands for the default, which is what leaving the
// option out gives. The one zero with a meaning of its own is
// DrainTimeout(0), and a nil Logger logs nothing. pgbus's options follow
// the same rule.
type Option func(*config)

type config struct {
	busadapter.OptionCheck // the first option given a value outside its range

	channel    string
	outboxSize int
	heartbeat  time.Duration
	drain      time.Duration
	logger     *slog.Logger
	maxSize    int
	key        []byte
	clientName string
	subOpts    *redis.Options
}

// Channel sets the Redis pub/sub channel (default "idmap"). Every instance
// sharing a database must use the same channel.
func Channel(name string) Option {
	return func(c *config) {
		if name == "" {
			c.Fail(busadapter.OptionError("redisbus", "Channel", "empty channel name"))
			return
		}
		c.channel = name
	}
}

// OutboxSize bounds the messages queued for publication (default 1024;
// positive).
// Past it, each database's queued messages are replaced by one for the
// whole database, so the outbox never holds more than n messages (or one
// per database, if there are more databases than n), besides the batch
// being sent.
func OutboxSize(n int) Option {
	return func(c *config) {
		if c.Check(busadapter.PositiveSize("redisbus", "OutboxSize", n)) {
			c.outboxSize = n
		}
	}
}

// Heartbeat sets how often each subscription PINGs Redis (default 3s;
// positive). When
// nothing at all (neither the PONG nor a message) arrives within an
// interval after a PING, the subscription is taken for lost (the handler
// hears a Gap) and made again: a silently dead connection is noticed
// within two intervals.
func Heartbeat(d time.Duration) Option {
	return func(c *config) {
		if c.Check(busadapter.PositiveInterval("redisbus", "Heartbeat", d)) {
			c.heartbeat = d
		}
	}
}

// DrainTimeout bounds how long Close keeps trying to publish what is still
// queued (default 1s). Zero drops the outbox at once.
func DrainTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.Fail(busadapter.OptionError("redisbus", "DrainTimeout", "%v is negative", d))
			return
		}
		c.drain = d
	}
}

// Logger sets where the bus logs publication failures, lost and resumed
// subscriptions (level Warn and Info) and dropped payloads (Warn). By
// default the bus logs where the first database opened with it logs
// (idmap.Logger, which idmap tells it through bus.Attacher), and nothing
// if that database logs nothing, as pgbus does. A nil logger logs nothing.
func Logger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
	}
}

// ClientName sets the name (CLIENT SETNAME) of the subscription
// connections, as CLIENT LIST shows it: by default the name in the
// subscription's redis.Options, else DefaultClientName
// ("idmap-redisbus-listener"). pgbus.ApplicationName is its counterpart.
// The publishing connections keep the name of New's options.
func ClientName(name string) Option {
	return func(c *config) {
		if name == "" || strings.ContainsAny(name, " \n\r") {
			c.Fail(busadapter.OptionError("redisbus", "ClientName", "%q is not a client name (empty, or with spaces)", name))
			return
		}
		c.clientName = name
	}
}

// SubscribeOptions sets the options of the subscription connections apart
// from those of publishing (and of the probes), which are New's (opts is
// copied, not kept). By default both use New's options: the same server,
// with its own timeouts, pool, TLS or credentials for each direction. What
// is published on the publishing side's server must reach the subscribing
// side's: the same server, or a replica of it (messages and probes come
// over replication), or cluster-wide pub/sub.
func SubscribeOptions(opts *redis.Options) Option {
	return func(c *config) {
		if opts == nil {
			c.Fail(busadapter.OptionError("redisbus", "SubscribeOptions", "nil *redis.Options"))
			return
		}
		o := *opts
		c.subOpts = &o
	}
}

// MaxMessageSize bounds the payloads a subscription decodes, in bytes,
// positive (bus.DefaultMaxMessageSize, 64 KiB, by default). A longer payload is
// dropped before it is decoded, counted (Dropped) and logged, without
// stalling the subscription. go-redis reads each payload whole before it
// can be looked at; Redis bounds that with its pub/sub output buffer limit
// (client-output-buffer-limit pubsub, 32 MiB by default: past it, Redis
// drops the subscriber's connection, which the subscription reports as a
// Gap).
func MaxMessageSize(n int) Option {
	return func(c *config) {
		if c.Check(busadapter.PositiveSize("redisbus", "MaxMessageSize", n)) {
			c.maxSize = n
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
	return func(c *config) {
		if c.Check(busadapter.KeyLength("redisbus", key)) {
			c.key = append([]byte(nil), key...)
		}
	}
}

// Dropped returns how many received payloads the subscriptions dropped,
// by cause: over MaxMessageSize, without a valid tag (with a Key), not a
// message.
func (b *Bus) Dropped() bus.Drops { return b.drops.Load() }

// New returns a Bus on the Redis server that opts describe (opts is
// copied, not kept). It does not connect: the publisher connects on the
// first Publish, each subscription when Subscribe is called, both in the
// background. NewContext connects at once and fails fast, as pgbus.New
// does.
func New(opts *redis.Options, options ...Option) (*Bus, error) {
	if opts == nil {
		return nil, errors.New("redisbus: New: nil *redis.Options")
	}
	c := config{
		channel:    DefaultChannel,
		outboxSize: DefaultOutboxSize,
		heartbeat:  DefaultHeartbeat,
		drain:      DefaultDrainTimeout,
		maxSize:    bus.DefaultMaxMessageSize,
	}
	for _, o := range options {
		o(&c)
		if c.Err != nil {
			return nil, c.Err
		}
	}
	o := *opts
	so := o
	if c.subOpts != nil {
		so = *c.subOpts
	}
	if c.clientName != "" {
		so.ClientName = c.clientName
	} else if so.ClientName == "" {
		so.ClientName = DefaultClientName
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{
		client:     redis.NewClient(&o),
		subClient:  redis.NewClient(&so),
		channel:    c.channel,
		probeChan:  busadapter.ProbeChannel(),
		hb:         c.heartbeat,
		drain:      c.drain,
		maxSize:    c.maxSize,
		key:        c.key,
		passwords:  []string{opts.Password, so.Password},
		out:        newOutbox(c.outboxSize),
		ctx:        ctx,
		cancel:     cancel,
		senderDone: make(chan struct{}),
	}
	b.logger.Init(c.logger, c.channel)
	go b.send()
	return b, nil
}

// NewContext is New, then checks within ctx that Redis answers on both the
// publishing and the subscribing options (a PING each): a wrong address or
// password is an error here, as pgbus.New reports it, rather than a
// subscription that never listens.
func NewContext(ctx context.Context, opts *redis.Options, options ...Option) (*Bus, error) {
	b, err := New(opts, options...)
	if err != nil {
		return nil, err
	}
	for _, c := range []*redis.Client{b.client, b.subClient} {
		if err := c.Ping(ctx).Err(); err != nil {
			err = b.errorf(err, "connecting to %s", c.Options().Addr)
			_ = b.Close()
			return nil, err
		}
	}
	return b, nil
}

// log returns the bus's logger.
func (b *Bus) log() *slog.Logger { return b.logger.Load() }

// Attach is called by idmap for each database opened with the bus: unless
// Logger was given, the bus logs where the first database with a logger
// logs.
func (b *Bus) Attach(a bus.Attachment) { b.logger.Attach(a) }

// Probe publishes token on the bus's probe channel, which only this bus's
// subscriptions listen to, from the publishing side, the way messages go
// (a subscription on a replica receives both over replication): each
// subscription hands it to its handler's Probe behind every message Redis
// had published before (bus.Prover). idmap probes every quarter of its
// lease.
func (b *Bus) Probe(ctx context.Context, token uint64) error {
	if err := b.client.Publish(ctx, b.probeChan, strconv.FormatUint(token, 10)).Err(); err != nil {
		return b.errorf(err, "probe")
	}
	return nil
}

// NewURL is New with options parsed by redis.ParseURL, for example
// "redis://user:password@localhost:6379/0?dial_timeout=3s".
func NewURL(rawURL string, options ...Option) (*Bus, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Parse's errors quote the whole URL: keep only the cause, and
		// scrub it all the same.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		msg := strings.ReplaceAll(err.Error(), rawURL, "<url>")
		msg = scrub(msg, passwordOf(rawURL))
		return nil, errors.New("redisbus: invalid Redis URL: " + msg)
	}
	return New(opts, options...)
}

// passwordOf returns the password of a URL, even one that does not parse.
func passwordOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	rest := rawURL
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	userinfo := rest[:at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return userinfo[i+1:]
	}
	return ""
}

// scrub removes password from s.
func scrub(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "xxxxx")
}

// Error is the type of the errors a Bus reports (in Gap.Err, in its logs):
// its message begins with "redisbus:" and never contains the password;
// Unwrap returns the cause, from go-redis or the network.
type Error struct {
	msg string
	err error
}

// Error returns the message, which begins with "redisbus:" and holds no
// password.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the cause, from go-redis or the network, or nil.
func (e *Error) Unwrap() error { return e.err }

// errorf returns an *Error "redisbus: <what>: <err>" with the password
// scrubbed.
func (b *Bus) errorf(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	msg := what + ": " + err.Error()
	for _, p := range b.passwords {
		msg = scrub(msg, p)
	}
	return &Error{msg: "redisbus: " + msg, err: err}
}

// Publish queues msgs for publication and returns at once; it fails only
// when the bus is closed. See OutboxSize for what happens when the outbox
// is full.
func (b *Bus) Publish(_ context.Context, msgs []bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	widened, err := b.out.put(msgs)
	if err != nil {
		return err
	}
	if widened > 0 {
		b.log().Warn("redisbus: outbox full; queued messages widened to whole databases",
			slog.Int("replaced", widened))
	}
	return nil
}

// Subscribe starts a subscription that delivers every message published on
// the channel (this instance's included) to h, from one goroutine, in
// order, until Close. It returns at once; h hears Gap{Resumed: true} once
// Redis confirms the subscription.
func (b *Bus) Subscribe(h bus.Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	s := &subscriber{b: b, h: h}
	b.subs = append(b.subs, s)
	b.wg.Add(1)
	go s.run()
	return nil
}

// Close publishes what is queued (for up to DrainTimeout), ends the
// subscriptions (a handler that listened hears a last Gap{Err: ErrClosed}:
// no message will come) and closes the connections. It waits for every
// goroutine of the bus, so it must not be called from a handler. Calls
// after the first return nil.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.mu.Unlock()

	b.out.close() // the sender drains what is queued, then returns
	t := time.NewTimer(b.drain)
	select {
	case <-b.senderDone:
	case <-t.C:
		if n := b.out.len(); n > 0 {
			b.log().Warn("redisbus: closing with messages not published", slog.Int("messages", n))
		}
	}
	t.Stop()
	b.cancel()
	for _, s := range subs {
		s.stop()
	}
	<-b.senderDone
	b.wg.Wait()
	err := b.client.Close()
	if err2 := b.subClient.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return b.errorf(err, "closing the client")
	}
	return nil
}

// backoff returns the wait after the n-th consecutive failure (n ≥ 1).
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 20 {
		d = min(minBackoff<<(n-1), maxBackoff)
	}
	// ±20 % of jitter, so that instances do not reconnect in step.
	return d + time.Duration((rand.Float64()-0.5)*0.4*float64(d))
}

// sleep waits d, or until Close stops everything; it reports whether the
// bus is still running.
func (b *Bus) sleep(d time.Duration) bool { return busadapter.Sleep(b.ctx, d) }
