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

// String names the dialect as the Dialect option accepts it.
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

// placeholder returns the n-th (1-based) placeholder.
func (d dialect) placeholder(n int) string {
	if d == dialectPostgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// selectSQL returns the statement with which Get loads one object of m,
// and the length of its "SELECT … FROM table" head, which GetMany
// continues with its own WHERE. Names are written only through quoteName
// (ident.go).
func (m *model) selectSQL(d dialect) (query string, head int) {
	m.getSQL[d].Do(func() {
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, f := range m.fields {
			if i > 0 {
				b.WriteString(", ")
			}
			d.quoteName(&b, f.column)
		}
		b.WriteString(" FROM ")
		d.quoteName(&b, m.tableName...)
		m.getHead[d] = b.Len()
		b.WriteString(" WHERE ")
		for i, fi := range m.pk {
			if i > 0 {
				b.WriteString(" AND ")
			}
			d.quoteName(&b, m.fields[fi].column)
			b.WriteString(" = ")
			b.WriteString(d.placeholder(i + 1))
		}
		m.getTxt[d] = b.String()
	})
	return m.getTxt[d], m.getHead[d]
}
