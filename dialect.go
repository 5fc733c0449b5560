package idmap

import (
	"strconv"
	"strings"
)

// dialect decides placeholders and identifier quoting in the SQL that idmap
// builds.
type dialect uint8

const (
	dialectGeneric dialect = iota // "?" and double-quoted identifiers
	dialectSQLite
	dialectMySQL
	dialectPostgres
	numDialects
)

func (d dialect) String() string {
	switch d {
	case dialectSQLite:
		return "sqlite"
	case dialectMySQL:
		return "mysql"
	case dialectPostgres:
		return "postgres"
	}
	return "generic"
}

// parseDialect reads a Dialect option's value.
func parseDialect(s string) (dialect, bool) {
	switch strings.ToLower(s) {
	case "sqlite", "sqlite3":
		return dialectSQLite, true
	case "mysql", "mariadb":
		return dialectMySQL, true
	case "postgres", "postgresql", "pgx", "pg":
		return dialectPostgres, true
	case "", "generic":
		return dialectGeneric, true
	}
	return dialectGeneric, false
}

// inferDialect guesses the dialect from a base driver's name (or a package
// path): containing "sqlite" → sqlite, "mysql" → mysql, "pgx" or "postgres"
// → postgres, anything else → generic.
func inferDialect(name string) dialect {
	name = strings.ToLower(name)
	switch {
	case strings.Contains(name, "sqlite"):
		return dialectSQLite
	case strings.Contains(name, "mysql"):
		return dialectMySQL
	case strings.Contains(name, "pgx"), strings.Contains(name, "postgres"), strings.HasSuffix(name, "/pq"), name == "pq":
		return dialectPostgres
	}
	return dialectGeneric
}

// quoteIdent quotes a possibly schema-qualified identifier for the dialect.
// Each dot-separated part is quoted, with the quote character doubled inside;
// a part that is already quoted is left as it is.
func (d dialect) quoteIdent(name string) string {
	q := byte('"')
	if d == dialectMySQL {
		q = '`'
	}
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if len(p) >= 2 && (p[0] == '"' || p[0] == '`' || p[0] == '[') {
			continue
		}
		parts[i] = string(q) + strings.ReplaceAll(p, string(q), string(q)+string(q)) + string(q)
	}
	return strings.Join(parts, ".")
}

// placeholder returns the n-th (1-based) placeholder.
func (d dialect) placeholder(n int) string {
	if d == dialectPostgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// getSQL returns the statement with which Get loads one object of m.
func (m *model) selectSQL(d dialect) string {
	m.getSQL[d].Do(func() {
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, f := range m.fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(d.quoteIdent(f.column))
		}
		b.WriteString(" FROM ")
		b.WriteString(d.quoteIdent(m.table))
		b.WriteString(" WHERE ")
		for i, fi := range m.pk {
			if i > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(d.quoteIdent(m.fields[fi].column))
			b.WriteString(" = ")
			b.WriteString(d.placeholder(i + 1))
		}
		m.getTxt[d] = b.String()
	})
	return m.getTxt[d]
}
