package idmapotel

import (
	"context"
	"errors"
	"math"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/go-idmap/idmap"
)

// ScopeName is the instrumentation scope name: the default name of the
// Meter that Register creates.
const ScopeName = "github.com/go-idmap/idmap/otel"

// The attribute keys of the instruments.
const (
	// DBNameKey is on every measurement: the database's name (idmap.Name,
	// or its DSN without the password).
	DBNameKey = attribute.Key("db.name")
	// MapKey tells the shared map ("shared") from the scopes' maps
	// ("scopes") on idmap.hits, idmap.misses, idmap.refreshes and
	// idmap.entries.
	MapKey = attribute.Key("map")
	// CauseKey is the cause of idmap.expiries ("keys", "tables",
	// "database", "remote" or "age"), of idmap.bus.gaps ("lost" or
	// "closed") and of idmap.bus.dropped ("too large", "unauthenticated"
	// or "malformed").
	CauseKey = attribute.Key("cause")
	// ReasonKey is the reason of idmap.flushes: "manual", "request end",
	// "transaction end", "schema change" or "bus gap".
	ReasonKey = attribute.Key("reason")
)

// An Option configures Register.
type Option interface {
	apply(*config)
}

type config struct {
	meterName string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithMeterName sets the name of the Meter that the instruments are created
// with. The default is ScopeName.
func WithMeterName(name string) Option {
	return optionFunc(func(c *config) {
		if name != "" {
			c.meterName = name
		}
	})
}

// Register creates idmap's instruments with a Meter of mp and registers one
// callback that observes them all from a single idmap.AllStats call per
// collection, for every database opened through idmap in the process
// (databases opened later included). A nil mp means the global
// MeterProvider (otel.GetMeterProvider).
//
// Unregister the returned Registration to stop observing. Register once per
// MeterProvider: two registrations with the same meter would report the
// same measurements twice.
func Register(mp metric.MeterProvider, opts ...Option) (metric.Registration, error) {
	cfg := config{meterName: ScopeName}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	in, err := newInstruments(mp.Meter(cfg.meterName))
	if err != nil {
		return nil, err
	}
	return in.meter.RegisterCallback(in.observe, in.observables()...)
}

// instruments are the instruments of one registration.
type instruments struct {
	meter metric.Meter

	hits, misses, refreshes metric.Int64ObservableCounter
	expiries, flushes       metric.Int64ObservableCounter
	weakReleased, evicted   metric.Int64ObservableCounter
	published, received     metric.Int64ObservableCounter
	gaps, pubErrors         metric.Int64ObservableCounter
	keysPub, keysRecv       metric.Int64ObservableCounter
	leaseExpiries, probes   metric.Int64ObservableCounter
	dropped                 metric.Int64ObservableCounter
	entries                 metric.Int64ObservableUpDownCounter
	listening, ready        metric.Int64ObservableGauge
	lease, proofAge         metric.Float64ObservableGauge
}

func newInstruments(m metric.Meter) (*instruments, error) {
	in := &instruments{meter: m}
	var errs []error
	counter := func(dst *metric.Int64ObservableCounter, name, unit, desc string) {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		*dst = c
	}
	counter(&in.hits, "idmap.hits", "{hit}",
		"Objects served from an identity map without being loaded.")
	counter(&in.misses, "idmap.misses", "{miss}",
		"Objects not found fresh in an identity map: Get calls that queried and bound rows that became new entries.")
	counter(&in.refreshes, "idmap.refreshes", "{refresh}",
		"Bound rows that brought an expired, partial or refreshed entry up to date.")
	counter(&in.expiries, "idmap.expiries", "{expiry}",
		"Expiries by cause: writes or messages that expired keys, tables or the whole database, and lookups of entries older than MaxAge.")
	counter(&in.flushes, "idmap.flushes", "{flush}",
		"Flushes of identity maps by reason.")
	counter(&in.weakReleased, "idmap.weak.released", "{entry}",
		"Weak entries of the shared map removed after their objects were collected.")
	counter(&in.evicted, "idmap.evicted", "{entry}",
		"Strongly held entries of the shared map dropped to stay within MaxStrongEntries.")
	counter(&in.published, "idmap.bus.published", "{message}",
		"Messages sent on the database's bus.")
	counter(&in.received, "idmap.bus.received", "{message}",
		"Messages of other instances received on the database's bus and applied.")
	counter(&in.gaps, "idmap.bus.gaps", "{gap}",
		"Subscriptions to the database's bus lost, or ended by the bus's Close, by cause.")
	counter(&in.pubErrors, "idmap.bus.errors", "{error}",
		"Failures to publish on the database's bus.")
	counter(&in.keysPub, "idmap.bus.keys.published", "{key}",
		"Keys named one by one in the messages sent on the database's bus (a message for a whole table or database names none).")
	counter(&in.keysRecv, "idmap.bus.keys.received", "{key}",
		"Keys named one by one in the messages of other instances received and applied.")
	counter(&in.leaseExpiries, "idmap.bus.lease.expiries", "{expiry}",
		"Times the database's bus proved no delivery within the lease while it listened (the maps stopped serving).")
	counter(&in.probes, "idmap.bus.probes", "{probe}",
		"Probes sent on the database's bus to prove delivery.")
	counter(&in.dropped, "idmap.bus.dropped", "{message}",
		"Received payloads that the database's buses dropped before decoding them, by cause.")

	var err error
	in.entries, err = m.Int64ObservableUpDownCounter("idmap.entries",
		metric.WithUnit("{entry}"),
		metric.WithDescription("Objects held by the identity maps now."))
	errs = append(errs, err)
	in.listening, err = m.Int64ObservableGauge("idmap.bus.listening",
		metric.WithUnit("1"),
		metric.WithDescription("1 while the subscription to the database's bus is up, else 0 (0 without a bus)."))
	errs = append(errs, err)
	in.ready, err = m.Int64ObservableGauge("idmap.bus.ready",
		metric.WithUnit("1"),
		metric.WithDescription("1 while the database serves from its maps (idmap.Ready), else 0."))
	errs = append(errs, err)
	in.lease, err = m.Float64ObservableGauge("idmap.bus.lease.duration",
		metric.WithUnit("s"),
		metric.WithDescription("The database's lease: how old the newest proof of delivery may be for the maps to serve (0 when its bus proves no delivery)."))
	errs = append(errs, err)
	in.proofAge, err = m.Float64ObservableGauge("idmap.bus.proof.age",
		metric.WithUnit("s"),
		metric.WithDescription("Time since the probe of the newest proof of delivery was sent; absent until a proof came."))
	errs = append(errs, err)

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *instruments) observables() []metric.Observable {
	return []metric.Observable{
		in.hits, in.misses, in.refreshes, in.expiries, in.flushes,
		in.weakReleased, in.evicted,
		in.published, in.received, in.gaps, in.pubErrors,
		in.keysPub, in.keysRecv, in.leaseExpiries, in.probes, in.dropped,
		in.entries, in.listening, in.ready, in.lease, in.proofAge,
	}
}

// allStats is idmap.AllStats; tests count its calls.
var allStats = idmap.AllStats

// observe is the callback: one idmap.AllStats per collection.
func (in *instruments) observe(_ context.Context, o metric.Observer) error {
	for _, s := range allStats() {
		in.observeDB(o, s)
	}
	return nil
}

var (
	mapShared = MapKey.String("shared")
	mapScopes = MapKey.String("scopes")
)

func (in *instruments) observeDB(o metric.Observer, s idmap.Stats) {
	db := DBNameKey.String(s.DB)
	only := metric.WithAttributeSet(attribute.NewSet(db))
	with := func(kv attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(db, kv))
	}

	for _, m := range [...]struct {
		kv attribute.KeyValue
		st idmap.MapStats
	}{{mapShared, s.Shared}, {mapScopes, s.Scopes}} {
		opt := with(m.kv)
		o.ObserveInt64(in.hits, clamp(m.st.Hits), opt)
		o.ObserveInt64(in.misses, clamp(m.st.Misses), opt)
		o.ObserveInt64(in.refreshes, clamp(m.st.Refreshes), opt)
		o.ObserveInt64(in.entries, m.st.Entries, opt)
	}

	e := s.Expiries
	for _, c := range [...]struct {
		cause string
		n     uint64
	}{{"keys", e.Keys}, {"tables", e.Tables}, {"database", e.Database}, {"remote", e.Remote}, {"age", e.Age}} {
		o.ObserveInt64(in.expiries, clamp(c.n), with(CauseKey.String(c.cause)))
	}
	for reason, n := range s.Flushes {
		o.ObserveInt64(in.flushes, clamp(n), with(ReasonKey.String(reason)))
	}

	o.ObserveInt64(in.weakReleased, clamp(s.WeakReleased), only)
	o.ObserveInt64(in.evicted, clamp(s.Evicted), only)
	o.ObserveInt64(in.published, clamp(s.Bus.Published), only)
	o.ObserveInt64(in.received, clamp(s.Bus.Received), only)
	for _, cause := range [...]string{"lost", "closed"} { // Bus.Gaps, split
		o.ObserveInt64(in.gaps, clamp(s.Bus.GapsByCause[cause]), with(CauseKey.String(cause)))
	}
	o.ObserveInt64(in.pubErrors, clamp(s.Bus.Errors), only)
	o.ObserveInt64(in.keysPub, clamp(s.Bus.PublishedKeys), only)
	o.ObserveInt64(in.keysRecv, clamp(s.Bus.ReceivedKeys), only)
	o.ObserveInt64(in.leaseExpiries, clamp(s.Bus.LeaseExpiries), only)
	o.ObserveInt64(in.probes, clamp(s.Bus.Probes), only)
	d := s.Bus.Dropped
	for _, c := range [...]struct {
		cause string
		n     uint64
	}{{"too large", d.TooLarge}, {"unauthenticated", d.Unauthenticated}, {"malformed", d.Malformed}} {
		o.ObserveInt64(in.dropped, clamp(c.n), with(CauseKey.String(c.cause)))
	}
	o.ObserveInt64(in.listening, bit(s.Bus.Listening), only)
	o.ObserveInt64(in.ready, bit(s.Bus.Ready), only)
	o.ObserveFloat64(in.lease, s.Bus.Lease.Seconds(), only)
	if s.Bus.SinceProof >= 0 {
		o.ObserveFloat64(in.proofAge, s.Bus.SinceProof.Seconds(), only)
	}
}

func bit(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// clamp converts a counter to the int64 of an observation (a counter past
// math.MaxInt64 stays there).
func clamp(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
