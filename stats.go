package idmap

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/signals"
)

// Stats are the counters of one database: every *sql.DB opened with its
// name. Counters count from the start of the process; Entries are current.
type Stats struct {
	DB     string   `json:"db"`     // the database's name (never a password: see Name)
	Shared MapStats `json:"shared"` // the shared map
	Scopes MapStats `json:"scopes"` // every scope's map of this database, summed
	// Expiries counts expiries by cause.
	Expiries Expiries `json:"expiries"`
	// Flushes counts flushes by reason (signals.Reason's String: "manual",
	// "request end", "transaction end", "schema change", "bus gap").
	Flushes map[string]uint64 `json:"flushes"`
	// WeakReleased counts weak entries of the shared map removed after
	// their objects were collected.
	WeakReleased uint64 `json:"weak_released"`
	// Evicted counts strongly held entries of the shared map dropped to
	// stay within MaxStrongEntries.
	Evicted uint64 `json:"evicted"`
	// Bus counts what went through the database's bus (WithBus).
	Bus BusStats `json:"bus"`
}

// MapStats are the counters of a map (or of a set of maps).
type MapStats struct {
	// Entries is how many objects the map holds now. For the shared map,
	// weak entries whose objects were collected but not yet swept count.
	Entries int64 `json:"entries"`
	// Hits counts objects served without loading them: Get and Cached
	// hits, and rows of a Bind whose fresh canonical object was kept.
	Hits uint64 `json:"hits"`
	// Misses counts loaded rows that became new entries (a Get that
	// queried, a Bind), and Get calls whose row did not exist.
	Misses uint64 `json:"misses"`
	// Refreshes counts loaded rows that brought an existing entry up to
	// date: one that was expired or partial, or any entry under
	// WithRefresh or a locking read.
	Refreshes uint64 `json:"refreshes"`
}

// Expiries counts expiries by cause: each a write (or message) that
// expired keys, a table or the whole database.
type Expiries struct {
	Keys     uint64 `json:"keys"`     // keys expired one by one by local writes
	Tables   uint64 `json:"tables"`   // whole tables expired by local writes and DDL
	Database uint64 `json:"database"` // the whole database expired (local writes, gaps in a bus)
	Remote   uint64 `json:"remote"`   // messages received from other instances
	Age      uint64 `json:"age"`      // lookups that found an entry older than MaxAge
}

// BusStats counts a database's traffic on its bus.
type BusStats struct {
	Published uint64 `json:"published"` // messages sent
	Received  uint64 `json:"received"`  // messages of other instances applied
	Gaps      uint64 `json:"gaps"`      // subscriptions lost (GapsByCause splits them)
	Errors    uint64 `json:"errors"`    // failures to publish
	Listening bool   `json:"listening"` // the subscription is up (false without a bus)

	// PublishedKeys and ReceivedKeys count the keys that the messages
	// sent and applied named one by one; a message for a whole table or
	// database names none.
	PublishedKeys uint64 `json:"published_keys"`
	ReceivedKeys  uint64 `json:"received_keys"`
	// GapsByCause counts the times the database's maps stopped serving
	// because of its bus, by cause: "lost" (the subscription was lost),
	// "closed" (the bus was closed) and "lease expired" (LeaseExpiries).
	GapsByCause map[string]uint64 `json:"gaps_by_cause"`
	// LeaseExpiries counts the times the bus proved no delivery within the
	// lease while it listened (see Lease).
	LeaseExpiries uint64 `json:"lease_expiries"`
	// Lease is the database's lease; 0 when its bus proves no delivery.
	Lease time.Duration `json:"lease_ns"`
	// SinceProof is the time since the probe of the newest proof of
	// delivery was sent; -1 when none came yet (or the bus proves none).
	SinceProof time.Duration `json:"since_proof_ns"`
	// Probes counts the probes sent on the bus (about 4 a lease).
	Probes uint64 `json:"probes"`
	// Ready: the database serves from its maps (see Ready).
	Ready bool `json:"ready"`
	// Dropped counts, by cause, the received payloads that the
	// database's buses and sources dropped before decoding them (those
	// that count them: bus.Dropper, as pgbus and redisbus do). A bus
	// shared by several databases drops a payload before it knows the
	// database: each of them counts the bus's drops.
	Dropped bus.Drops `json:"dropped"`
}

// StatsOf returns the counters of db's database. ok is false when db was
// not opened through idmap. Counting the shared maps' entries visits them,
// so a call takes time in proportion to their size (about 100 ms per
// million entries on a small machine): read statistics for a debug endpoint
// or a metrics scrape, not on every request.
func StatsOf(db *sql.DB) (s Stats, ok bool) {
	d := databaseOf(db)
	if d == nil {
		return Stats{}, false
	}
	return statsOf(d.cdb), true
}

// AllStats returns the counters of every database opened through idmap in
// this process, sorted by name.
func AllStats() []Stats {
	dbs := allMaps()
	out := make([]Stats, 0, len(dbs))
	for _, d := range dbs {
		out = append(out, statsOf(d))
	}
	return out
}

// statsOf reads the counters of one database's maps into Stats.
func statsOf(d *cache.DB) Stats {
	c := d.Counters()
	s := Stats{
		DB: d.Name(),
		Shared: MapStats{
			Entries: c.SharedEntries, Hits: c.Shared.Hits, Misses: c.Shared.Misses, Refreshes: c.Shared.Refreshes,
		},
		Scopes: MapStats{
			Entries: c.ScopeEntries, Hits: c.Scoped.Hits, Misses: c.Scoped.Misses, Refreshes: c.Scoped.Refreshes,
		},
		Expiries: Expiries{
			Keys: c.ExpiredKeys, Tables: c.ExpiredTables, Database: c.ExpiredAll, Remote: c.ExpiredRemote, Age: c.ExpiredAge,
		},
		Flushes:      make(map[string]uint64, len(c.Flushes)),
		WeakReleased: c.WeakReleased,
		Evicted:      c.Evicted,
		Bus: BusStats{
			Published: c.Published, Received: c.Received, Gaps: c.Gaps, Errors: c.PublishErrors, Listening: c.Listening,
		},
	}
	s.Bus.Ready = ready(d)
	s.Bus.SinceProof = -1
	if st := loadState(d); st != nil {
		s.Bus.PublishedKeys = st.publishedKeys.Load()
		s.Bus.ReceivedKeys = st.receivedKeys.Load()
		s.Bus.LeaseExpiries = st.leaseExpiries.Load()
		s.Bus.Probes = st.probes.Load()
		s.Bus.GapsByCause = map[string]uint64{"lost": st.lost.Load(), "closed": st.closed.Load(), "lease expired": s.Bus.LeaseExpiries}
		if d.Lease() != 0 {
			s.Bus.Lease = st.leaseDuration()
		}
		if p := st.lastProof.Load(); p > 0 {
			s.Bus.SinceProof = time.Duration(cache.Mono() - p)
		}
	}
	s.Bus.Dropped = droppedOf(d)
	for r, n := range c.Flushes {
		if name := signals.Reason(r).String(); name != "unknown" {
			s.Flushes[name] = n
		}
	}
	return s
}

// StatsHandler serves AllStats as JSON, for a debug endpoint:
//
//	mux.Handle("GET /debug/idmap", idmap.StatsHandler())
//
// idmap publishes nothing by itself: it does not import expvar (whose
// import registers /debug/vars on http.DefaultServeMux). To publish the
// same figures through expvar, call idmapexpvar.Publish (package
// github.com/go-idmap/idmap/idmapexpvar), or
//
//	expvar.Publish("idmap", expvar.Func(func() any { return idmap.AllStats() }))
func StatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(AllStats())
	})
}

// droppedOf sums the drops of the buses d follows that count them.
func droppedOf(d *cache.DB) bus.Drops {
	var out bus.Drops
	subscriptions.mu.Lock()
	defer subscriptions.mu.Unlock()
	for b, s := range subscriptions.m {
		dr, ok := b.(bus.Dropper)
		if !ok || !s.has(d) {
			continue
		}
		n := dr.Dropped()
		out.TooLarge += n.TooLarge
		out.Unauthenticated += n.Unauthenticated
		out.Malformed += n.Malformed
	}
	return out
}
