// Package redisbus is an idmap bus (package github.com/go-idmap/idmap/bus)
// on Redis pub/sub, with github.com/redis/go-redis/v9.
//
//	b, err := redisbus.NewURL("redis://localhost:6379/0")
//	if err != nil { ... }
//	defer b.Close()
//	db, err := idmap.Open("pgx", dsn, idmap.Name("app"), idmap.WithBus(b))
//
// Publishing. Redis cannot publish inside the writer's transaction, so a
// Bus publishes after commit: Publish queues the messages in a bounded
// outbox and returns at once; one background goroutine PUBLISHes them, in
// order, on the configured channel, retrying with backoff (reconnecting)
// when Redis fails. When the outbox overflows (Redis is down or slow), the
// messages queued for each database are replaced by one message for the
// whole database, which keeps the origin and sequence number of the
// newest: a subscriber then expires more than it needs to, but no write
// goes unannounced. Close sends what is queued, for up to DrainTimeout.
//
// Subscribing. Each Subscribe holds one dedicated connection, read in a
// loop by one goroutine, which calls the handler in order. The handler
// hears Gap{Resumed: true} once Redis confirms the subscription; when the
// connection fails, or nothing arrives on it within a Heartbeat interval
// after one of the PINGs sent every interval, it hears Gap{Err: ...} once, then the bus reconnects and
// resubscribes with bounded exponential backoff and reports Gap{Resumed:
// true} again. Redis pub/sub does not keep messages for an absent
// subscriber: what is published between the loss and the resumption is
// lost, which is why idmap serves nothing from the database's maps in
// between.
//
// Proving delivery. The bus is a bus.Prover: each probe idmap sends (4
// per lease, see idmap.Lease) is a PUBLISH on a channel of the bus's own,
// from the subscribing side's pool, and comes back through each
// subscription behind every message Redis published before it; idmap
// serves from the maps only while such a proof is younger than the lease.
//
// Configuration. The subscription connections are named (CLIENT SETNAME)
// by ClientName, "idmap-redisbus-listener" by default; SubscribeOptions
// configures them apart from publishing. By default the bus logs where the
// first database opened with it logs (bus.Attacher). New does not
// connect; NewContext does, and fails fast. An option given a value
// outside its range (MaxMessageSize(0), a Heartbeat that is not positive,
// an empty Channel or ClientName, SubscribeOptions(nil), a Key under 16
// bytes) makes New return an error that names the option, "redisbus:
// MaxMessageSize: 0 is not a positive size"; no value stands for the
// default, which is what leaving the option out gives (DrainTimeout(0)
// has a meaning of its own: Close drops what is queued). pgbus follows
// the same rule.
//
// Payloads over MaxMessageSize, without a valid tag (with a Key) or that
// are not idmap messages are dropped, counted (Dropped) and logged.
// Errors, and what is logged, begin with "redisbus:" and never
// contain the Redis password.
package redisbus
