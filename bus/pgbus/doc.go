// Package pgbus is an idmap bus (github.com/go-idmap/idmap/bus) on
// PostgreSQL's LISTEN/NOTIFY, with pgx v5.
//
// Instances of a service that share a PostgreSQL database open it with the
// same idmap.Name and a Bus on the same channel:
//
//	b, err := pgbus.New(ctx, dsn,
//		pgbus.Channel("idmap"),              // the default
//		pgbus.Heartbeat(5*time.Second),      // the default
//		pgbus.Logger(slog.Default()))
//	if err != nil {
//		return err // "pgbus: …", never with the password
//	}
//	defer b.Close()
//
//	db, err := idmap.Open("pgx", dsn, idmap.Name("app"), idmap.WithBus(b))
//	if err != nil {
//		return err
//	}
//	defer db.Close()
//
//	u, err := idmap.Get[User](ctx, db, 42) // expired when another instance writes user 42
//
// # Publishing
//
// Bus is a bus.ConnPublisher: idmap executes the statement Statement
// returns,
//
//	SELECT pg_notify($1, $2), pg_notify($1, $3), …
//
// (the channel and each message's encoding as text arguments, never as SQL
// text) on the writer's own connection, inside its transaction just before
// COMMIT, or right after an autocommit write. PostgreSQL delivers the
// notifications if and only if the transaction commits, and after the
// write is visible. This works on any PostgreSQL driver the application's
// idmap database uses (pgx's stdlib, lib/pq). Publish, which idmap does not
// call on a ConnPublisher, queues messages and sends them from a connection
// of the bus's own.
//
// # Subscribing
//
// Subscribe listens on a dedicated connection (its application_name is
// "idmap-pgbus-listener" unless the connection string or ApplicationName
// says otherwise) and returns at once; it reports bus.Gap{Resumed: true}
// once LISTEN succeeded, and idmap serves nothing from that database's maps
// until then. When the connection is lost (closed by the server, broken,
// or stalled: every Heartbeat without a notification the listener pings
// the server, and a ping that takes longer than PingTimeout counts as a
// loss) the bus reports bus.Gap{Err: err} once, reconnects with backoff
// (50 ms doubling to 2 s), listens again and reports bus.Gap{Resumed:
// true}. idmap expires the database at the loss and at the resumption, so
// a notification missed in between cannot leave a stale row. Close reports
// a last bus.Gap{Err: ErrClosed} to each subscription that was listening,
// and returns once their goroutines have stopped (do not call it from a
// Handler).
//
// The bus proves delivery (bus.Prover): each probe idmap sends (4 per
// lease, see idmap.Lease) is a SELECT pg_notify on a channel of the bus's
// own, run on the listening connection itself; it comes back behind every
// notification committed before it, and idmap serves from the maps only
// while such a proof is younger than the lease. A probe that takes longer
// than PingTimeout counts as a lost connection.
//
// By default the bus logs where the first database opened with it logs
// (bus.Attacher), and nothing if that database logs nothing.
// ListenerConfig configures the listening connections apart from the
// bus's own publishing connection.
//
// Connect the bus to PostgreSQL itself, or to a pooler in session mode:
// LISTEN does not work through a pooler in transaction mode. The idmap
// database itself may use any pooler.
//
// # Options
//
// An option given a value outside its range (MaxMessageSize(0), a
// Heartbeat or PingTimeout that is not positive, an empty Channel or
// ApplicationName, ListenerConfig(nil), a Key under 16 bytes) makes New
// return an error that names the option, "pgbus: MaxMessageSize: 0 is not
// a positive size"; no value stands for the default, which is what leaving
// the option out gives. redisbus follows the same rule.
//
// # Security
//
// The bus never puts the connection's password in an error, a log record
// or a name: errors start with "pgbus:", are redacted, and unwrap only to
// context errors, bus.ErrClosed and the server's *pgconn.PgError, not to
// pgx's errors that hold the configuration.
package pgbus
