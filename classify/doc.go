// Package classify tells what an SQL statement may write, before it reaches
// the database.
//
// The idmap driver wrapper calls [Classify] with the text of every statement
// it sees and expires exactly what the statement can touch: the rows named
// by equality conditions on their keys, else whole tables, else the whole
// database. Classification never under-reports: whatever the package does
// not understand and that might write widens, first to the table, then to
// the whole database ([Statement.WholeDB]).
//
// # Readings
//
// The lexer knows each [Dialect]'s strings, quoted identifiers, comments
// and placeholders. Where the server's settings change how a text splits
// into tokens (MySQL's NO_BACKSLASH_ESCAPES and ANSI_QUOTES, executable
// comments /*!NNNNN … */ on an older server, Postgres'
// standard_conforming_strings), every reading that could apply is
// classified and the results are merged: the writes of all of them, and
// WholeDB if they disagree on transaction control. A text with an
// unterminated string, quoted identifier or comment, or with unbalanced
// parentheses, widens to the whole database.
//
// # Safety net
//
// Every token of a statement is either consumed by the parse of that
// statement's structure or scanned: a keyword that could start a write
// (INSERT, UPDATE, DELETE, REPLACE, MERGE, TRUNCATE, ALTER, DROP, CREATE,
// CALL, EXECUTE, COPY, LOAD, …) in a place the parser does not explain
// widens to the whole database. Subqueries are classified wherever they
// appear. A fuzz test holds the package to a naive independent scanner.
//
// # What the caller does with the result
//
// A [Write]'s conditions and values are the statement's own: the caller
// converts them to key values (a Value's placeholder ordinal refers to the
// statement's arguments) and widens to the table when a conversion is not
// exact, since the server compares by its own rules (MySQL collations
// ignore case and trailing spaces, MySQL reads '5abc' as 5 against an
// integer, SQLite applies column affinity). Conditions on columns other
// than the key are of no use to an identity map and can be ignored.
// Upserts and replaces may touch rows other than those their values name;
// see [Write].
//
// # Limitations (all widen, none under-reports)
//
//   - A function called from a query may write (SELECT my_func()), and so
//     may a view, an operator or a column default that runs one: the
//     classifier cannot tell. It reports the names a statement calls
//     (Statement.Calls), every name it mentions wherever it stands
//     (Statement.Names) and its operators (Statement.Operators), for the
//     caller to match against the database's catalogue. Keywords that open
//     a list or a subquery (IN (…), EXISTS (…), VALUES (…)) are not calls.
//     nextval, setval and advisory locks write no rows.
//   - Stored procedures (CALL, EXEC, EXECUTE, DO) and unknown statements
//     widen to the whole database; so do most statements inside MySQL
//     compound bodies (IF, WHILE, …).
//   - CREATE FUNCTION/PROCEDURE/EVENT/RULE/SCHEMA/TYPE/EXTENSION and DROP
//     or ALTER of such objects are schema changes of unknown scope.
//   - TRUNCATE … CASCADE and DROP … CASCADE widen to the whole database.
//   - WHERE clauses with a top-level OR, col IN (subquery), col = ANY of
//     anything but one placeholder (ANY(ARRAY[…]), ANY(subquery), a cast to
//     an array type), IS NULL, <=>, and literal casts ('5'::int) give no
//     conditions. PostgreSQL's col = ANY($1) gives a condition whose value
//     is marked Array: the argument's elements are its values.
//   - SQLite's UPDATE OR REPLACE gives no conditions: it may delete the
//     rows its new values conflict with.
//   - MySQL's SET autocommit = 0 is reported as a Begin and SET autocommit
//     = 1 as ImplicitCommit and a Commit, both marked Autocommit: the
//     caller begins the server's next transaction itself whenever one ends
//     in between. Every spelling is read (SESSION/LOCAL, @@session.,
//     @@local., quoted names, = or :=, 0/1/ON/OFF/TRUE/FALSE as words or
//     strings, in parentheses, among other assignments); a value that
//     cannot be read (a variable, DEFAULT, an expression) is a Begin marked
//     Autocommit and the whole database: autocommit is never assumed.
//   - USE sets Statement.Use: names after it resolve in another database.
//   - A MySQL text with a backslash in a string is also read without
//     backslash escapes; if that reading leaves a string unterminated, the
//     text widens to the whole database.
//
// # Cache
//
// Results are cached per (dialect, text) in a bounded cache: classifying a
// text seen before costs one map lookup and no allocation. A [*Statement]
// is shared by every caller that classifies the same text and must not be
// modified.
//
// The package does not import database/sql.
package classify
