// Package idmapotel publishes idmap's statistics (idmap.AllStats) as
// OpenTelemetry metrics. It is a module of its own, so that idmap itself
// does not depend on OpenTelemetry.
//
// Register creates the instruments with a Meter of the MeterProvider given
// and registers one callback, which calls idmap.AllStats once per collection
// and observes every database opened through idmap in the process:
//
//	reg, err := idmapotel.Register(meterProvider)
//	if err != nil {
//		return err
//	}
//	defer reg.Unregister()
//
// # Instruments
//
// Every measurement has the attribute db.name: the database's name
// (idmap.Name, or its DSN without the password). Counters are cumulative,
// from the start of the process.
//
//	name                      kind           unit       attributes
//	idmap.hits                counter        {hit}      map = shared | scopes
//	idmap.misses              counter        {miss}     map = shared | scopes
//	idmap.refreshes           counter        {refresh}  map = shared | scopes
//	idmap.entries             updowncounter  {entry}    map = shared | scopes
//	idmap.expiries            counter        {expiry}   cause = keys | tables | database | remote | age
//	idmap.flushes             counter        {flush}    reason = manual | request end | transaction end | schema change | bus gap
//	idmap.weak.released       counter        {entry}
//	idmap.evicted             counter        {entry}
//	idmap.bus.published       counter        {message}
//	idmap.bus.received        counter        {message}
//	idmap.bus.keys.published  counter        {key}
//	idmap.bus.keys.received   counter        {key}
//	idmap.bus.gaps            counter        {gap}      cause = lost | closed
//	idmap.bus.lease.expiries  counter        {expiry}
//	idmap.bus.probes          counter        {probe}
//	idmap.bus.dropped         counter        {message}  cause = too large | unauthenticated | malformed
//	idmap.bus.errors          counter        {error}
//	idmap.bus.listening       gauge          1          (1 while subscribed, else 0)
//	idmap.bus.ready           gauge          1          (1 while the database serves from its maps, else 0)
//	idmap.bus.lease.duration  gauge          s          (0 when the bus proves no delivery)
//	idmap.bus.proof.age       gauge          s          (absent until the first proof of delivery)
//
// They are the fields of idmap.Stats: Bus.Gaps split by cause is
// idmap.bus.gaps; the third cause of Bus.GapsByCause, "lease expired", is
// idmap.bus.lease.expiries (Bus.LeaseExpiries); Bus.Dropped counts what
// the database's buses dropped (bus.Dropper: pgbus and redisbus), and a bus
// shared by several databases counts its drops in each; Bus.SinceProof is
// idmap.bus.proof.age.
//
// idmap.entries is the number of objects held now; it is an up-down counter
// because entries add up across maps and databases. Counting the shared
// map's entries visits it, so a collection takes time in proportion to the
// number of entries.
//
// Each database is a db.name value: give databases a fixed name with
// idmap.Name, above all those opened with idmap.NewConnector, which
// otherwise get a name of their own each time.
package idmapotel
