// Package pgfeed is a change feed for idmap from PostgreSQL logical
// replication: every change committed to the published tables, by any
// writer (another program, psql, a migration, a trigger, a function, a
// rule, a DEFAULT, a foreign-key action, TRUNCATE), expires what idmap
// holds of the rows it touched.
//
//	f, err := pgfeed.New(ctx, os.Getenv("DATABASE_URL"), "app")
//	if err != nil { … }
//	defer f.Close()
//	db, err := idmap.Open("pgx", os.Getenv("DATABASE_URL"), idmap.Name("app"), idmap.WithSource(f))
//
// The third argument of New is the idmap database's Name: the feed's
// messages carry it.
//
// # How
//
// The feed streams the pgoutput plugin (protocol 1, with logical decoding
// messages) from a temporary replication slot of its own, on a
// replication connection of its own. At the COMMIT of each transaction it
// delivers one bus.Message per table the transaction changed: the primary
// keys of the rows (an UPDATE that changes a key names the old key and the
// new), or the whole table (TRUNCATE; more than bus.MaxKeys rows; a key
// column of a type other than an integer, text or uuid; a table without a
// primary key), or the whole database (more than 64 tables; a table
// created since the feed connected, such as a new partition, whose parents
// the feed does not know yet). A change to a partition, or to an
// inheritance child, names the partition and each of its ancestors.
// Messages are delivered in commit order. idmap applies them through the
// same epochs as its own writes, so a load in flight across a change is
// not kept as fresh.
//
// A commit is delivered only once new snapshots show it. The server
// streams a commit as soon as its record is flushed, which is before the
// committing backend makes the transaction visible (it waits for
// synchronous standbys in between, if any, and may be descheduled there on
// a busy machine); a query begun in that window still reads the old rows,
// and had the change been delivered, idmap would keep what it loaded as
// fresh until the row's next write. The feed therefore takes a snapshot
// (pg_current_snapshot) on an ordinary connection of its own (one more
// connection per feed) and delivers, in commit order, the transactions it
// shows; read-your-writes marks and probes follow everything committed
// before them. It asks at once after a commit with nothing written after
// it (or a keepalive), or when a mark or a probe waits; on a busy stream,
// at most 1 ms after a commit, or once the stream falls silent: one round
// trip per batch of commits, about 80–100 µs more delivery time at the
// median here (bench/testdata/HISTORY.md). A commit that never
// becomes visible (a synchronous standby that does not answer) holds back
// what follows it: marks wait until SyncTimeout, and the database's lease
// expires, so nothing is served stale meanwhile
// (TestFeedDeliversOnlyVisibleCommits).
//
// # Gaps
//
// A temporary slot lives as long as its connection. When the connection
// is lost (the server restarts, the walsender is terminated, the network
// fails), the feed reports a gap: idmap flushes the database and serves
// nothing from its maps until the feed streams again, on a new slot that
// starts at the server's current position, and flushes once more then.
// Nothing committed in between can be served stale. A commit streamed
// before the gap that is still not visible (waiting for a synchronous
// standby) holds the new slot's creation, which waits for every
// transaction the server still lists as running: the feed resumes once it
// is visible (TestFeedResumesAfterHeldCommits).
//
// # The lease
//
// A Feed is a bus.Prover, like the buses: a stream that stalls without
// failing (a network that stops forwarding, a walsender or a reader that
// hangs) makes the database stop serving from its maps within its lease
// (idmap.Lease, 500 ms by default), and not later than the lease after
// another writer's commit. Each probe (4 per lease, so 8 a second by
// default) is a logical decoding message of a prefix of the feed's own
// (pg_logical_emit_message), committed as a transaction of its own with
// synchronous_commit on, on one ordinary connection that the feed opens at
// the first probe and keeps (one more connection per feed); the feed
// decodes it at its commit, behind every transaction committed before it,
// and idmap serves from the maps only while such a proof was sent less than
// a lease ago. Each probe costs the server a transaction id and a WAL
// flush; its round trip was 0.3–1.2 ms at the median, under 4 ms, measured
// here on a server with fsync off (with fsync on, add the disk's flush). Every feed of the database decodes every feed's probes and ignores
// the others' by prefix. A non-transactional message would take no
// transaction id, but on PostgreSQL 14–16 it waits for the WAL writer to be
// streamed (200–400 ms measured here, with the default wal_writer_delay),
// too long for the default lease. A probe does not count as a
// read-your-writes mark, nor a mark as a probe. A probe writes WAL: the
// feed must connect to a server that accepts writes (on a standby, which
// PostgreSQL 16 can decode on, every probe fails, and the database serves
// nothing from its maps).
//
// # Read-your-writes
//
// A Feed is a bus.Syncer. After a commit through idmap whose effects the
// statement reader cannot bound (a table with triggers or rules, a view, a
// function that writes, a statement it cannot read), idmap runs the
// feed's mark (pg_logical_emit_message, in its own transaction with
// synchronous_commit on) on the connection that committed and waits until
// the feed delivers it, after everything that committed before it: Commit
// (or the autocommit Exec) returns once the feed has applied the commit.
// A commit the reader understands does not wait. Past SyncTimeout (5s),
// idmap expires the whole database instead.
//
// # The publication
//
// The feed reads one publication (Publication, default "idmap_feed"). It
// creates it if needed and adds the tables to follow: those Tables names,
// or every table of the search_path's schemas that has a primary key (or
// another replica identity), with their partitions and inheritance
// children. It never publishes a table without one: PostgreSQL refuses
// UPDATE and DELETE on a table that is published for them without a
// replica identity (SQLSTATE 55000), to every writer, which is also why
// "CREATE PUBLICATION … FOR ALL TABLES" must not be used. Changes to a
// table outside the publication, to unlogged and temporary tables, and
// DDL are not reported. With ExistingPublication the feed uses a
// publication you manage, as it is; if it sets publish_via_partition_root,
// changes to partitions are reported under their partitioned table only,
// and types mapped on a partition itself are not expired by them.
//
// # Server settings
//
//   - PostgreSQL 14 or later (tested with 15);
//   - wal_level = logical (a server restart is needed to change it);
//   - max_replication_slots and max_wal_senders: one of each per feed
//     (per instance of the program), plus what other replication uses;
//   - the role: REPLICATION (or superuser) to stream; to create or alter
//     the publication, the ownership of the tables published (CREATE
//     PUBLICATION … FOR TABLE) and of the publication, USAGE on their
//     schemas and the CREATE privilege on the database; with
//     ExistingPublication, only REPLICATION;
//   - pg_hba.conf must let the role connect to the database (a "replication
//     = database" connection is matched by the database's own lines).
//
// With synchronous_commit off, the server streams a commit only once the
// WAL writer has flushed it (wal_writer_delay, 200ms by default): changes
// by other writers arrive up to that much later; the read-your-writes mark
// commits synchronously and does not wait for it.
//
// # One slot per instance, or a relay
//
// Each feed has its own slot and walsender, which decodes the whole WAL of
// the database: measured here, 25–40µs of walsender CPU per commit per
// feed, linear in the number of feeds. Relay lets one process follow the
// slot and publish what it reads on the cluster's bus (pgbus, redisbus), so
// that a cluster pays for one slot; the other instances then have the
// bus's guarantees, not the feed's (see Relay).
package pgfeed
