// Package pgfeed is a change feed for idmap from PostgreSQL logical replication.
package pgfeed
