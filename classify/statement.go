package classify

import (
	"fmt"
	"strings"
)

// Dialect selects the lexical rules, placeholders and name folding of an
// SQL dialect.
type Dialect uint8

// The dialects. Generic is for drivers of unknown dialect: "?" placeholders
// (and $n, :name, @name), double-quoted identifiers; readings that another
// dialect's comments or quoting would give are classified too.
const (
	SQLite Dialect = iota
	MySQL
	Postgres
	Generic
	numDialects
)

// String returns the dialect's name: "sqlite", "mysql", "postgres" or
// "generic".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case MySQL:
		return "mysql"
	case Postgres:
		return "postgres"
	case Generic:
		return "generic"
	}
	return fmt.Sprintf("Dialect(%d)", uint8(d))
}

// Statement is what a statement text (one or several statements separated
// by ";") may do. It is shared by every caller that classifies the same
// text: callers must not modify it or anything it points to.
type Statement struct {
	// Read is set when the text contains at least one query that reads
	// (SELECT, VALUES, TABLE, SHOW, EXPLAIN, FETCH, …), including the
	// queries inside INSERT … SELECT and subqueries.
	Read bool
	// Locking is set for a locking read: FOR UPDATE, FOR NO KEY UPDATE,
	// FOR SHARE, FOR KEY SHARE, LOCK IN SHARE MODE.
	Locking bool
	// WholeDB is set when the text may write something that cannot be
	// determined (an unparsable or unknown statement, CALL, EXECUTE, DO, a
	// PRAGMA that sets a value, …): the whole database must be expired.
	WholeDB bool
	// ImplicitCommit is set for MySQL statements that commit any active
	// transaction before they run (DDL other than on temporary tables,
	// LOCK/UNLOCK TABLES, BEGIN, SET autocommit = 1, GRANT, …).
	ImplicitCommit bool
	// Writes are the data writes: one per (statement, written table).
	Writes []Write
	// Schema are the schema changes (CREATE, ALTER, DROP, RENAME,
	// TRUNCATE, …). A change whose Table is "" has an unknown scope: flush
	// the whole database.
	Schema []SchemaChange
	// Tx is the transaction control sent as SQL, in order.
	Tx []TxOp
	// Calls are the names, lower-cased and without their schema, of what
	// the text calls as a function (a name followed by "("), keywords
	// included: a function that the database defines may write (SELECT
	// my_func()), which only its catalogue tells. Table names before a
	// column list appear too.
	Calls []string
	// Names are the names the text mentions, lower-cased, wherever they
	// stand: every word but the reserved keywords, every quoted
	// identifier, and each qualified name also as "a.b". A view, a table
	// or a function whose use the catalogue cannot bound (a view that can
	// reach a writing function, a table whose writes run code) is found
	// here whatever the statement does with it.
	Names []string
	// Operators are the runs of operator tokens in the text (PostgreSQL
	// and Generic), each concatenated: an operator the text uses, a
	// user-defined one included, is a substring of one of them. A
	// user-defined operator runs a function.
	Operators []string
	// Use is set when the text changes the session's current database
	// (MySQL's USE): unqualified names in it and after it may resolve to
	// another database.
	Use bool
	// Args is the number of positional arguments the text consumes: the
	// number of "?" placeholders (SQLite: the sum over its statements of
	// the largest parameter index, as SQLite numbers them), or the largest
	// $n.
	Args int
}

// Op is the kind of a data write.
type Op uint8

// The kinds of data writes.
const (
	Insert   Op = iota + 1 // INSERT (also INSERT IGNORE, ON CONFLICT DO NOTHING, COPY FROM, LOAD DATA)
	Update                 // UPDATE
	Delete                 // DELETE
	Upsert                 // INSERT … ON CONFLICT DO UPDATE, ON DUPLICATE KEY UPDATE, INSERT OR REPLACE
	Replace                // REPLACE (MySQL, SQLite), LOAD DATA … REPLACE
	Truncate               // TRUNCATE: every row (also reported as a schema change)
	Merge                  // MERGE: any row of the target
	Refresh                // REFRESH MATERIALIZED VIEW: every row
)

var opNames = [...]string{"", "insert", "update", "delete", "upsert", "replace", "truncate", "merge", "refresh"}

// String returns the lower-case name of the operation.
func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Write is a data write to one table.
//
// Which rows it can touch: for Update and Delete, every row that satisfies
// every condition in Where (nil Where: any row). For Insert, Upsert and
// Replace, the rows given by Columns and Values; an upsert also updates the
// existing row that conflicts on Conflict (any unique key when Conflict is
// nil), and a replace (also SQLite's INSERT OR REPLACE and UPDATE OR REPLACE)
// deletes the rows that conflict on any unique key. Truncate, Merge and
// Refresh touch any row.
type Write struct {
	Table Name // the written table
	Op    Op
	// Where holds the top-level AND conjuncts of an UPDATE's or DELETE's
	// WHERE that restrict rows by equality on columns: col = v, v = col,
	// col IN (v, …), (a, b) = (v, w), (a, b) IN ((v, w), …). Other
	// conjuncts are left out (they only restrict more); a WHERE with a
	// top-level OR gives no conditions. nil means any row.
	//
	// In a statement that names several tables (MySQL's multi-table
	// UPDATE and DELETE, UPDATE … FROM, DELETE … USING) a condition on an
	// unqualified column is given to every written table: it restricts a
	// table only if the column is the table's own, since the server
	// rejects a name that two tables share. Use only conditions on the
	// table's key columns.
	Where []Cond
	// Columns is the column list of an INSERT, REPLACE or upsert (nil
	// without one); Values holds each VALUES row (nil for INSERT … SELECT,
	// DEFAULT VALUES, or without a column list). MySQL's INSERT … SET gives
	// one row.
	Columns []string
	Values  [][]Value
	// Conflict is the conflict target of ON CONFLICT (cols) DO UPDATE when
	// it is a plain column list; nil otherwise (any unique key).
	Conflict []string
	// Set holds the assignments of an UPDATE, or of the DO UPDATE / ON
	// DUPLICATE KEY UPDATE part of an upsert, so that the caller can see a
	// primary-key change.
	Set []Assign
	// Returning is set for … RETURNING.
	Returning bool
}

// Name is a table name. Postgres folds unquoted names to lower case and
// keeps quoted ones as written. MySQL, SQLite and Generic names are kept as
// written: compare them case-insensitively. Schema is "" for an unqualified
// name (a three-part name keeps its last two parts).
type Name struct {
	Schema, Table string
}

// String returns the name as "schema.table", or "table" when unqualified.
func (n Name) String() string {
	if n.Schema == "" {
		return n.Table
	}
	return n.Schema + "." + n.Table
}

// Cond restricts the rows of a write: a row can be touched only if its
// Columns equal one of the tuples in Values. col = v gives Columns [col],
// Values [[v]]; col IN (a, b) gives [[a] [b]]; an empty Values (SQLite's
// col IN ()) matches no row.
type Cond struct {
	Columns []string
	Values  [][]Value
}

// Assign is one assignment col = value of an UPDATE or an upsert's update
// part. Plain is set when the value is a literal or a placeholder (then it
// is in Value); a computed value leaves Value.Expr set. Column is "" for an
// assignment that was not understood: any column may change.
type Assign struct {
	Column string
	Value  Value
	Plain  bool
}

// Value is a value in a statement: a placeholder, a literal, or (Expr) some
// other expression whose value is unknown.
//
// A placeholder may carry a Postgres cast ($1::bigint): convert the
// argument to the column's type and widen when that is lossy or fails.
// Comparisons may be case- or type-insensitive on the server (MySQL
// collations, SQLite affinity): the caller compares keys accordingly.
type Value struct {
	// Arg is the 1-based ordinal of a positional placeholder among the
	// arguments of the whole text; 0 for literals and named placeholders.
	Arg int
	// Literal is the literal's value: int64, float64, string, []byte
	// (x'…'), bool, or nil for NULL (and for placeholders).
	Literal any
	// Named is the name of a named placeholder (:name, @name, $name),
	// without its sigil.
	Named string
	// Expr is set when the value is not a plain literal or placeholder.
	Expr bool
	// Array is set for the placeholder of PostgreSQL's col = ANY($1): its
	// argument is an array, and each element is a value of the condition.
	Array bool
}

// String formats the value for tests and debugging: ?1, :name, a Go
// literal, or "expr".
func (v Value) String() string {
	switch {
	case v.Expr:
		return "expr"
	case v.Arg > 0:
		return fmt.Sprintf("?%d", v.Arg)
	case v.Named != "":
		return ":" + v.Named
	case v.Literal == nil:
		return "NULL"
	}
	switch l := v.Literal.(type) {
	case string:
		return fmt.Sprintf("%q", l)
	case []byte:
		return fmt.Sprintf("x'%x'", l)
	}
	return fmt.Sprint(v.Literal)
}

// SchemaChange is a change to a table's definition (or to its existence).
// Table.Table "" means the scope is unknown: the whole database.
type SchemaChange struct {
	Table Name
}

// TxKind is a kind of transaction control statement.
type TxKind uint8

// The kinds of transaction control statements.
const (
	Begin      TxKind = iota + 1 // BEGIN, START TRANSACTION, BEGIN DEFERRED/IMMEDIATE/EXCLUSIVE, … AND CHAIN
	Commit                       // COMMIT, END
	Rollback                     // ROLLBACK, ABORT (also Postgres PREPARE TRANSACTION, MySQL XA PREPARE)
	Savepoint                    // SAVEPOINT name
	Release                      // RELEASE [SAVEPOINT] name
	RollbackTo                   // ROLLBACK TO [SAVEPOINT] name
)

var txNames = [...]string{"", "begin", "commit", "rollback", "savepoint", "release", "rollback to"}

// String returns the lower-case name of the kind.
func (k TxKind) String() string {
	if int(k) < len(txNames) && k != 0 {
		return txNames[k]
	}
	return fmt.Sprintf("TxKind(%d)", uint8(k))
}

// TxOp is one transaction control statement. Name is the savepoint's name
// for Savepoint, Release and RollbackTo (folded like table names).
// Autocommit marks MySQL's SET autocommit: = 0 is a Begin after which the
// server begins a new transaction whenever one ends, until = 1, a Commit.
type TxOp struct {
	Kind       TxKind
	Name       string
	Autocommit bool
}

// String formats the operation as "begin", "savepoint name" or "begin
// autocommit".
func (t TxOp) String() string {
	s := t.Kind.String()
	if t.Name != "" {
		s += " " + t.Name
	}
	if t.Autocommit {
		s += " autocommit"
	}
	return s
}

// String summarises the classification, for tests and debugging.
func (s *Statement) String() string {
	var b strings.Builder
	flag := func(on bool, name string) {
		if on {
			b.WriteString(name)
			b.WriteByte(' ')
		}
	}
	flag(s.Read, "read")
	flag(s.Locking, "locking")
	flag(s.WholeDB, "wholedb")
	flag(s.ImplicitCommit, "implicit-commit")
	for _, w := range s.Writes {
		b.WriteString(w.String())
		b.WriteByte(' ')
	}
	for _, c := range s.Schema {
		if c.Table.Table == "" {
			b.WriteString("schema(*) ")
		} else {
			fmt.Fprintf(&b, "schema(%s) ", c.Table)
		}
	}
	for _, t := range s.Tx {
		fmt.Fprintf(&b, "tx(%s) ", t)
	}
	if s.Args > 0 {
		fmt.Fprintf(&b, "args=%d", s.Args)
	}
	return strings.TrimSpace(b.String())
}

// String formats the write as op(table cols=… values=… where=… set=…).
func (w Write) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s(%s", w.Op, w.Table)
	if w.Columns != nil {
		fmt.Fprintf(&b, " cols=%s", strings.Join(w.Columns, ","))
	}
	if w.Values != nil {
		b.WriteString(" values=")
		writeTuples(&b, w.Values)
	}
	if w.Conflict != nil {
		fmt.Fprintf(&b, " conflict=%s", strings.Join(w.Conflict, ","))
	}
	for _, c := range w.Where {
		fmt.Fprintf(&b, " where=%s:", strings.Join(c.Columns, ","))
		writeTuples(&b, c.Values)
	}
	if w.Set != nil {
		b.WriteString(" set=")
		for i, a := range w.Set {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.Column)
			if a.Plain {
				b.WriteString("=" + a.Value.String())
			}
		}
	}
	if w.Returning {
		b.WriteString(" returning")
	}
	b.WriteByte(')')
	return b.String()
}

// writeTuples formats rows of values as [(v,v) (v,v)], for String.
func writeTuples(b *strings.Builder, vs [][]Value) {
	b.WriteByte('[')
	for i, row := range vs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('(')
		for j, v := range row {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(v.String())
		}
		b.WriteByte(')')
	}
	b.WriteByte(']')
}
