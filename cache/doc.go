// Package cache holds idmap's identity maps: the shared map of each database
// (weak or strong references, process-wide) and scopes (private maps for one
// unit of work, strong references), with lazy expiry by epochs.
//
// It knows nothing of database/sql: objects are pointers (each Type's of
// one Go type, handed in and out as interfaces), keys are comparable
// values, and tables are names. A database's maps are made by NewDB and
// reached only through what it returns: the package keeps no registry a
// caller can look databases up in. The idmap
// package builds on it, keeping one DB per database name; most users never
// import it.
//
// # Epochs
//
// Every database has a clock. A query records the clock when it begins
// (DB.Now) and every entry it stores carries that epoch. A write, once it has
// succeeded, advances the clock and records the new value against the key,
// the table or the whole database it touched (DB.ExpireKeys, ExpireTable,
// ExpireAll). An entry is fresh while no record that covers it is newer than
// its epoch, so a row read by a query that began before a write finished is
// never fresh, whichever map it lands in, and a writer never has to visit the
// maps: expiry is found when an entry is read.
package cache
