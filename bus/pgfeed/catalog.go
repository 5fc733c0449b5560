package pgfeed

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// exec runs sql (simple protocol: a replication connection takes no other)
// and returns its results.
func (f *Feed) exec(ctx context.Context, conn *pgconn.PgConn, what, sql string) ([]*pgconn.Result, error) {
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, newError(what, err, f.secrets...)
	}
	return res, nil
}

// literal quotes s as an SQL string literal (standard_conforming_strings
// is on in every supported PostgreSQL; a backslash is refused anyway).
func literal(s string) (string, error) {
	if strings.ContainsAny(s, "\\\x00") {
		return "", fmt.Errorf("pgfeed: %q: a table name with a backslash or NUL", s)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// prepare checks the server and makes sure of the publication.
func (f *Feed) prepare(ctx context.Context, conn *pgconn.PgConn) error {
	res, err := f.exec(ctx, conn, "reading wal_level", "SHOW wal_level")
	if err != nil {
		return err
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "logical" {
		level := "?"
		if len(res) == 1 && len(res[0].Rows) == 1 {
			level = string(res[0].Rows[0][0])
		}
		return fmt.Errorf("pgfeed: the server runs with wal_level=%s; the feed needs wal_level=logical (set it in postgresql.conf and restart the server)", level)
	}
	res, err = f.exec(ctx, conn, "reading the server's version", "SHOW server_version_num")
	if err != nil {
		return err
	}
	if len(res) == 1 && len(res[0].Rows) == 1 {
		if v, err := strconv.Atoi(string(res[0].Rows[0][0])); err == nil && v < 140000 {
			return fmt.Errorf("pgfeed: the server is PostgreSQL %d.%d; the feed needs 14 or later (pgoutput's messages)", v/10000, v%10000/100)
		}
	}
	pubLit, _ := literal(f.o.publication)
	if f.o.existing {
		res, err := f.exec(ctx, conn, "reading the publication", "SELECT 1 FROM pg_publication WHERE pubname = "+pubLit)
		if err != nil {
			return err
		}
		if len(res[0].Rows) == 0 {
			return fmt.Errorf("pgfeed: publication %s does not exist (ExistingPublication: create it first)", f.o.publication)
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		err := f.ensurePublication(ctx, conn, pubLit)
		var pgErr *pgconn.PgError
		if err != nil && attempt < 3 && errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505") {
			continue // another instance created it, or added a table, meanwhile
		}
		return err
	}
}

// ensurePublication creates the publication, or adds the tables it lacks.
func (f *Feed) ensurePublication(ctx context.Context, conn *pgconn.PgConn, pubLit string) error {
	// The tables named (or every table of the search_path's schemas), and
	// their inheritance descendants that are not partitions (a partitioned
	// table brings its partitions itself).
	var roots string
	named := map[string]bool{} // oids of the tables Tables names
	if len(f.o.tables) > 0 {
		var lits []string
		for _, t := range f.o.tables {
			l, err := literal(t)
			if err != nil {
				return err
			}
			lits = append(lits, l)
		}
		res, err := f.exec(ctx, conn, "resolving the tables",
			"SELECT t, to_regclass(t)::oid FROM unnest(ARRAY["+strings.Join(lits, ",")+"]::text[]) AS t")
		if err != nil {
			return err
		}
		var oids []string
		for _, r := range res[0].Rows {
			if r[1] == nil {
				return fmt.Errorf("pgfeed: Tables: no table %s", r[0])
			}
			oids = append(oids, string(r[1]))
			named[string(r[1])] = true
		}
		roots = "SELECT unnest(ARRAY[" + strings.Join(oids, ",") + "]::oid[])"
	} else {
		roots = `SELECT c.oid FROM pg_class c WHERE c.relkind IN ('r','p') AND NOT c.relispartition
			AND c.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname = ANY (current_schemas(false)))`
	}
	q := `WITH RECURSIVE want(oid) AS (` + roots + `
		UNION SELECT i.inhrelid FROM pg_inherits i JOIN want w ON i.inhparent = w.oid)
	SELECT c.oid::regclass::text, c.relkind,
		c.relreplident = 'f' OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary))
			OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisreplident)),
		EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = ` + pubLit + ` AND r.prrelid = c.oid),
		EXISTS (SELECT 1 FROM pg_publication WHERE pubname = ` + pubLit + `), c.oid
	FROM want w JOIN pg_class c ON c.oid = w.oid
	WHERE NOT c.relispartition AND c.relpersistence = 'p'
	ORDER BY 1`
	res, err := f.exec(ctx, conn, "listing the tables to publish", q)
	if err != nil {
		return err
	}
	var add []string
	exists := false
	for _, r := range res[0].Rows {
		name, kind, ident, member := string(r[0]), string(r[1]), string(r[2]) == "t", string(r[3]) == "t"
		exists = exists || string(r[4]) == "t"
		if !ident {
			if named[string(r[5])] {
				return fmt.Errorf("pgfeed: table %s has no primary key (nor replica identity): in a publication, UPDATE and DELETE on it would fail", name)
			}
			f.log.Debug("pgfeed: not publishing a table without a primary key", "table", name)
			continue
		}
		if member {
			continue
		}
		if kind == "p" {
			add = append(add, name)
		} else {
			add = append(add, "ONLY "+name)
		}
	}
	if !exists {
		// The existence check rides on the table rows; with no table at
		// all, ask directly.
		res, err := f.exec(ctx, conn, "reading the publication", "SELECT 1 FROM pg_publication WHERE pubname = "+pubLit)
		if err != nil {
			return err
		}
		exists = len(res[0].Rows) > 0
	}
	switch {
	case !exists && len(add) == 0:
		_, err = f.exec(ctx, conn, "creating the publication", "CREATE PUBLICATION "+f.o.publication)
	case !exists:
		_, err = f.exec(ctx, conn, "creating the publication", "CREATE PUBLICATION "+f.o.publication+" FOR TABLE "+strings.Join(add, ", "))
	case len(add) > 0:
		_, err = f.exec(ctx, conn, "adding tables to the publication", "ALTER PUBLICATION "+f.o.publication+" ADD TABLE "+strings.Join(add, ", "))
	}
	return err
}

// relInfo is what the feed knows of a table from the catalogue.
type relInfo struct {
	name      string   // folded to lower case
	pk        []string // primary-key columns in key order, lower case; nil if none
	ancestors []string // inheritance ancestors (partitioned parents too), lower case
}

// catalogue reads, for every user table, its primary key and ancestors.
func (f *Feed) catalogue(ctx context.Context, conn *pgconn.PgConn) (map[uint32]*relInfo, error) {
	res, err := f.exec(ctx, conn, "reading the catalogue", `
SELECT c.oid, lower(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_toast%';
SELECT i.indrelid, lower(a.attname) FROM pg_index i
	CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
	JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
	WHERE i.indisprimary ORDER BY i.indrelid, k.ord;
WITH RECURSIVE anc(child, parent) AS (SELECT inhrelid, inhparent FROM pg_inherits
	UNION SELECT a.child, i.inhparent FROM anc a JOIN pg_inherits i ON i.inhrelid = a.parent)
SELECT a.child, lower(p.relname) FROM anc a JOIN pg_class p ON p.oid = a.parent ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	if len(res) != 3 {
		return nil, fmt.Errorf("pgfeed: reading the catalogue: %d results, want 3", len(res))
	}
	rels := map[uint32]*relInfo{}
	for _, r := range res[0].Rows {
		oid, err := strconv.ParseUint(string(r[0]), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("pgfeed: reading the catalogue: oid %q", r[0])
		}
		rels[uint32(oid)] = &relInfo{name: string(r[1])}
	}
	for i, res := range res[1:] {
		for _, r := range res.Rows {
			oid, _ := strconv.ParseUint(string(r[0]), 10, 32)
			ri := rels[uint32(oid)]
			if ri == nil {
				continue
			}
			if i == 0 {
				ri.pk = append(ri.pk, string(r[1]))
			} else {
				ri.ancestors = append(ri.ancestors, string(r[1]))
			}
		}
	}
	return rels, nil
}
