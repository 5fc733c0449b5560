package idmap

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-idmap/idmap/classify"
	"github.com/go-idmap/idmap/signals"
)

// uncertain reports whether a statement that failed with err may have run
// all the same: the connection broke or the context ended after it was
// sent. Its effects are then applied (when in doubt, widen). An error from
// the server means it did not run; driver.ErrBadConn and driver.ErrSkip
// mean it was not sent.
func uncertain(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, driver.ErrSkip) {
		return false
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"invalid connection", "broken pipe", "connection reset", "unexpected eof", "conn closed", "connection closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// effects is what one execution of a statement may have changed.
//
// The statements that go through the driver are classified by package
// classify (cached per text); the effects of one execution are resolved
// against its arguments, the models' keys and the database's foreign keys
// and triggers, then expired. When in doubt, widen: from keys to the table,
// from the table to the whole database.
type effects struct {
	all bool // the whole database
	// unbounded: the reader could not bound what the statement may have
	// written (an unknown statement, a catalogue it could not read, a name
	// whose effects it cannot know: a writing function, a view or default
	// that can reach one, …), so all is set. A change feed, when one is
	// attached, is the source of truth for such a write: what it reports
	// is what changed.
	unbounded bool
	tables    []string    // whole tables (folded names)
	keys      []tableKeys // rows by normalised key
	removes   []tableKeys // rows that no longer exist under these keys
}

// tableKeys are keys of one table (a folded name), normalised (normKey).
type tableKeys struct {
	table string
	keys  []any
}

// widenTable adds table t (a folded name) to the tables that expire whole.
func (e *effects) widenTable(t string) { e.tables = append(e.tables, t) }

// unknown is the reader's one rule, applied wherever it cannot bound a
// statement: unknown → wider. Keys it cannot read widen to their table (in
// writeEffects and the resolver); a table whose effects it cannot bound
// widens here to the whole database, marked unbounded.
func (e *effects) unknown() { e.all, e.unbounded = true, true }

// expire applies e to every map of db: lazily, through the epochs.
func (db *database) expire(e *effects) {
	if e.all {
		db.cdb.ExpireAll()
		return
	}
	for _, t := range e.tables {
		db.cdb.ExpireTable(t)
	}
	for _, tk := range e.keys {
		db.cdb.ExpireKeys(tk.table, tk.keys...)
	}
	for _, tk := range e.removes {
		db.removeShared(tk.table, tk.keys)
	}
}

// dialect returns the classifier's dialect for the database.
func (d dialect) classify() classify.Dialect {
	switch d {
	case dialectSQLite:
		return classify.SQLite
	case dialectMySQL:
		return classify.MySQL
	case dialectPostgres:
		return classify.Postgres
	}
	return classify.Generic
}

// mayChange reports whether a statement may change data, schema or the
// transaction state.
func mayChange(st *classify.Statement) bool {
	return st.WholeDB || len(st.Writes) > 0 || len(st.Schema) > 0 || len(st.Tx) > 0 || st.ImplicitCommit
}

// before classifies a statement about to be sent on c, and makes sure that
// what its effects depend on (the catalogue, the connection's current
// database) is known while the connection is idle.
func (c *connState) before(ctx context.Context, query string) *classify.Statement {
	st := classify.Classify(c.db.dialect.classify(), query)
	switch {
	case len(st.Writes) > 0:
		c.db.schemaFor(ctx, c)
	case c.db.schema.Load() == nil && !c.db.schemaTried.Load() && c.db.needsCatalogue(st) && !c.db.schemaTried.Swap(true):
		// A read that calls functions or names what no mapped type
		// declares: the catalogue says whether it can write.
		c.db.schemaFor(ctx, c)
	}
	if c.db.dialect == dialectMySQL && !c.curKnown && len(st.Writes) > 0 {
		c.learnCurrentDB(ctx)
	}
	if c.hooks != nil {
		c.hooksBefore(ctx, st)
	}
	return st
}

// learnCurrentDB asks the server for the connection's current database
// (MySQL), which unqualified names in its statements resolve to, before
// the first write on the connection and the first after a USE. Until it is
// known, they resolve to the union over every database (reads never ask).
func (c *connState) learnCurrentDB(ctx context.Context) {
	rows, err := baseQuery(ctx, c.base, "SELECT DATABASE()")
	if err == nil && len(rows) == 1 && len(rows[0]) == 1 {
		c.curDB, c.curKnown = strings.ToLower(asString(rows[0][0])), true
	}
}

// current returns the connection's current database for st: "" when
// unknown (or when st changes it).
func (c *connState) current(st *classify.Statement) string {
	if !c.curKnown || st.Use {
		return ""
	}
	return c.curDB
}

// after applies the effects of a statement that succeeded: expiry in every
// map now, recorded for the end of an open transaction; schema changes;
// transaction control sent as SQL. It returns the effects (nil for a read).
//
// With a bus, a write outside a transaction is published here, unless it
// came through the query path (viaQuery): its rows publish it when they
// close, once the connection is free again.
func (c *connState) after(ctx context.Context, st *classify.Statement, args []driver.NamedValue, viaQuery bool) *effects {
	cur := c.current(st)
	if st.Use {
		c.curKnown = false
	}
	if !mayChange(st) && !c.db.mentionsUnbounded(st, cur) && !c.hooksPending() {
		return nil
	}
	autocommit := c.tx == nil
	e := c.effectsFor(st, args, cur) // sqlite_hooks.go: what the engine reported, and the reader
	c.db.expire(e)
	c.db.logEffects(e)
	if c.tx != nil {
		c.tx.record(e)
	}
	if len(st.Schema) > 0 {
		c.db.schemaChanged(st.Schema)
	}
	if st.ImplicitCommit && c.tx != nil {
		t := c.tx
		if t.raw {
			c.end(false)
		} else {
			t.republish(c.db)
		}
		c.publishNow(ctx, t.pending, t.tooMany)
		c.chain()
	}
	for _, op := range st.Tx {
		c.txControl(ctx, op)
	}
	if st.WholeDB && c.db.dialect == dialectMySQL {
		if viaQuery {
			c.sessionPending = true // asked when the rows close
		} else {
			c.sessionUnknown(ctx)
		}
	}
	if len(st.Tx) > 0 && c.tx != nil {
		// Writes and transaction control in one string: the writes may
		// belong to the transaction now open; its end publishes them too.
		c.tx.record(e)
	}
	if autocommit {
		c.holdUncommitted(e) // commits with the open write's rows, if any
	}
	if autocommit && !viaQuery {
		c.publishNow(ctx, []*effects{e}, false)
	}
	return e
}

// sessionUnknown follows a MySQL statement whose effect on the session
// state idmap tracks (autocommit) is unknown: a procedure, a prepared
// statement, a SET it cannot read. It asks the server, once the connection
// is free (through the query path, when the rows close); when it cannot,
// it takes autocommit to be off, the conservative outcome: a transaction is
// open, whose writes expire at once and again at its end.
func (c *connState) sessionUnknown(ctx context.Context) {
	off := true
	if rows, err := baseQuery(ctx, c.base, "SELECT @@session.autocommit"); err == nil && len(rows) == 1 && len(rows[0]) == 1 {
		off = asString(rows[0][0]) == "0"
	}
	if off {
		c.autocommitOff = true
		c.chain()
		return
	}
	if c.autocommitOff {
		// Turned on: the server committed the open transaction.
		c.endBySQL(ctx, false)
		c.autocommitOff = false
	}
}

// txControl follows transaction control sent as SQL, conservatively.
func (c *connState) txControl(ctx context.Context, op classify.TxOp) {
	switch op.Kind {
	case classify.Begin:
		if op.Autocommit {
			c.autocommitOff = true
			c.chain()
			return
		}
		if c.tx == nil {
			c.begin(ctx, true)
		}
	case classify.Commit, classify.Rollback:
		c.endBySQL(ctx, op.Kind == classify.Rollback)
		if op.Autocommit {
			c.autocommitOff = false
		}
		c.chain()
	case classify.RollbackTo:
		if c.tx != nil {
			// Writes since the savepoint are undone: what the transaction
			// loaded after them is stale in its own map.
			c.tx.republish(c.db)
			c.tx.scope.ExpireLoadedSince(c.db.cdb, c.tx.epoch)
		}
	}
}

// endBySQL follows COMMIT or ROLLBACK sent as SQL.
func (c *connState) endBySQL(ctx context.Context, rollback bool) {
	t := c.tx
	if t == nil {
		return
	}
	if !rollback {
		defer c.publishNow(ctx, t.pending, t.tooMany)
	}
	if t.raw {
		c.end(rollback)
		return
	}
	// COMMIT or ROLLBACK as SQL inside a BeginTx transaction: the server
	// ended it; publish what it wrote and forget what it loaded.
	t.republish(c.db)
	t.scope.ExpireLoadedSince(c.db.cdb, t.epoch)
}

// chain begins the transaction that MySQL begins by itself when one ends
// while autocommit is off. It has a scope of its own: the connection may
// serve other units of work before it ends, and none must see another's
// objects.
func (c *connState) chain() {
	if c.autocommitOff && c.tx == nil {
		c.begin(context.Background(), true)
	}
}

// needsCatalogue reports whether a read needs the catalogue to be bounded:
// it calls a function, or names something that no mapped type declares as
// its table or a column (a view, another table). A read of mapped tables
// only (Get, GetMany, most Binds) does not make idmap read the catalogue;
// once read, the catalogue bounds every statement.
func (db *database) needsCatalogue(st *classify.Statement) bool {
	if len(st.Calls) > 0 {
		return true
	}
	known := currentTables().names
	for _, n := range st.Names {
		if !known[n] {
			return true
		}
	}
	return false
}

// mentionsUnbounded reports whether st names something whose effects the
// catalogue, as far as it has been read, cannot bound.
func (db *database) mentionsUnbounded(st *classify.Statement, cur string) bool {
	si := db.schema.Load()
	return si != nil && si.mentionsUnbounded(st, cur)
}

// effectsOf resolves a classified statement against its arguments, on a
// connection whose current database is cur ("" unknown).
//
// It is where the reader's one rule is enforced (effects.unknown): a
// statement the classifier could not bound (WholeDB), a write while the
// catalogue is unknown, a statement that names something the catalogue
// cannot bound, and a write that reaches a relation whose writes run code
// nothing declares, all widen to the whole database. Below that, keys that
// cannot be read exactly widen to their table.
func (db *database) effectsOf(st *classify.Statement, args []driver.NamedValue, cur string) *effects {
	e := &effects{}
	si := db.schema.Load()
	if st.WholeDB || si != nil && si.mentionsUnbounded(st, cur) {
		e.unknown()
		return e
	}
	for _, sc := range st.Schema {
		if sc.Table.Table == "" {
			e.all = true
			return e
		}
		e.widenTable(foldTable(sc.Table))
	}
	if len(st.Writes) == 0 {
		return e
	}
	if si == nil || !si.known {
		// Foreign keys and triggers unknown: any write may reach any
		// table.
		e.unknown()
		return e
	}
	for i := range st.Writes {
		w := &st.Writes[i]
		t := foldTable(w.Table)
		k := si.key(w.Table, cur)
		if !db.reachEffects(e, si, k, w.Op != classify.Insert) {
			e.unknown()
			return e
		}
		db.writeEffects(e, t, w, resolver{args: args, collated: db.dialect == dialectMySQL, kinds: currentTables().keyKinds[t],
			cols: colRuleOf(db.dialect), inexact: si.inexact[t]})
	}
	return e
}

// reachEffects widens e to the tables that a write to t reaches besides
// the rows it names: what triggers (or a view, or rules) write, as
// TriggerWrites declares; what foreign-key actions write (when the write
// may change or remove rows); the inheritance relatives of a table reached
// (PostgreSQL's partitions and parents); and so on from each table
// reached. A relative of t shares the rows t's write names, so coming back
// from it does not widen t; anything a trigger or an action writes may be
// any row, t's too. It reports false when a table reached has triggers
// that nothing declares: the write reaches the whole database.
func (db *database) reachEffects(e *effects, si *schemaInfo, t string, changes bool) bool {
	if !si.triggers[t] && len(si.inherit[t]) == 0 && (!changes || len(si.actions[t]) == 0) {
		return true // the common write: nothing beyond t's rows, and no allocation
	}
	type state struct {
		table string
		any   bool // any row may have changed (reached through a trigger or an action)
	}
	seen := map[state]bool{{t, false}: true}
	widened := map[string]bool{}
	queue := []state{{t, false}}
	push := func(x string, anyRow bool) {
		st := state{x, anyRow}
		if seen[st] {
			return
		}
		seen[st] = true
		if !widened[x] && (x != t || anyRow) {
			widened[x] = true
			e.widenTable(si.bare(x))
		}
		queue = append(queue, st)
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if si.triggers[st.table] {
			decl, ok := db.triggers[si.bare(st.table)]
			if !ok {
				return false
			}
			for _, d := range decl {
				push(d, true)
			}
		}
		// What a trigger or an action writes is not known: it may change
		// or remove rows.
		if changes || st.table != t || st.any {
			for _, c := range si.actions[st.table] {
				push(c, true)
			}
		}
		for _, r := range si.inherit[st.table] {
			push(r, st.any)
		}
	}
	return true
}

// writeEffects adds what write w to table t does to the rows of t.
func (db *database) writeEffects(e *effects, t string, w *classify.Write, r resolver) {
	pk := db.pkOf(t)
	if pk == nil {
		e.widenTable(t)
		return
	}
	switch w.Op {
	case classify.Insert:
		if keys, ok := valuesKeys(pk, w.Columns, w.Values, r); ok {
			e.keys = append(e.keys, tableKeys{t, keys})
			return
		}
	case classify.Update, classify.Delete:
		keys, ok := whereKeys(pk, w.Where, r)
		if !ok {
			break
		}
		if w.Op == classify.Delete {
			e.keys = append(e.keys, tableKeys{t, keys})
			e.removes = append(e.removes, tableKeys{t, keys})
			return
		}
		if !r.setsAny(w.Set, pk) {
			e.keys = append(e.keys, tableKeys{t, keys})
			return
		}
		// The key changes: nothing may stay under the old key, and the new
		// key is expired if it can be read, else the table.
		e.keys = append(e.keys, tableKeys{t, keys})
		e.removes = append(e.removes, tableKeys{t, keys})
		if nk, ok := setKeys(pk, w.Set, keys, r); ok {
			e.keys = append(e.keys, tableKeys{t, nk})
			return
		}
	case classify.Upsert:
		// The update part touches the row that conflicts on the target;
		// only a target that is the primary key names it.
		if r.sameColumns(w.Conflict, pk) && !r.setsAny(w.Set, pk) {
			if keys, ok := valuesKeys(pk, w.Columns, w.Values, r); ok {
				e.keys = append(e.keys, tableKeys{t, keys})
				return
			}
		}
	}
	e.widenTable(t)
}

// maxKeys bounds the keys one write expires one by one; past it, the table.
const maxKeys = 1024

// resolver reads the values of a statement's keys from its arguments.
type resolver struct {
	args []driver.NamedValue
	// collated: the server compares strings by collation (MySQL): a string
	// key value is used only when it spells an integer exactly, since
	// MySQL compares '5abc' with 5 as equal and its collations fold accents
	// in ways normKey does not follow.
	collated bool
	// kinds: what the mapped types' key fields of the table are, by
	// folded column. A server compares a text key column with a number in
	// its own way: MySQL as numbers (code = 5 matches '5', '05', '5abc' and
	// '5.0'), SQLite as the number's text (code = 5.0 matches '5.0', which
	// normKey does not give for 5.0); and a time key column with text as a
	// time (day = '2026-11-27' matches midnight, which normKey keeps in
	// nanoseconds), or with a time outside UTC by its wall clock if the
	// column has no time zone. Such a value is not a key of that column.
	kinds map[string]keyKind
	// cols: how the engine compares column names (see colRule).
	cols colRule
	// inexact: the columns the engine compares under a nondeterministic
	// collation (PostgreSQL): no value of theirs is a key, since rows with
	// other spellings match it.
	inexact map[string]bool
}

// colRule is how an engine compares column names.
type colRule uint8

const (
	// colsFold: without regard to case (MySQL; Generic). MySQL's
	// collation for names also ignores accents: names it takes as one
	// that differ here give no key, which only widens.
	colsFold colRule = iota
	// colsASCII: without regard to ASCII case only (SQLite).
	colsASCII
	// colsExact: exactly (PostgreSQL: the classifier folds unquoted names
	// to lower case and keeps quoted ones; "Id" and id are two columns).
	colsExact
)

// colRuleOf returns how the dialect compares column names.
func colRuleOf(d dialect) colRule {
	switch d {
	case dialectPostgres:
		return colsExact
	case dialectSQLite:
		return colsASCII
	}
	return colsFold
}

// index returns the index of column col in cols, compared as the engine
// compares column names, or -1.
func (r resolver) index(cols []string, col string) int {
	for i, c := range cols {
		switch r.cols {
		case colsExact:
			if c == col {
				return i
			}
		case colsASCII:
			if equalFoldASCII(c, col) {
				return i
			}
		default:
			if strings.EqualFold(c, col) {
				return i
			}
		}
	}
	return -1
}

// equalFoldASCII reports whether a and b are equal but for the case of
// ASCII letters.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// columnIndexes returns, for each key column, its index in cols, or nil if
// cols lacks one of them.
func (r resolver) columnIndexes(cols, pk []string) []int {
	idx := make([]int, len(pk))
	for i, col := range pk {
		if idx[i] = r.index(cols, col); idx[i] < 0 {
			return nil
		}
	}
	return idx
}

// setsAny reports whether set assigns a key column (or a column it could
// not read).
func (r resolver) setsAny(set []classify.Assign, pk []string) bool {
	for _, a := range set {
		if a.Column == "" || r.index(pk, a.Column) >= 0 {
			return true
		}
	}
	return false
}

// sameColumns reports whether a and b hold the same columns.
func (r resolver) sameColumns(a, b []string) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for _, c := range a {
		if r.index(b, c) < 0 {
			return false
		}
	}
	return true
}

// value returns the value of v for key column col. ok is false when it
// cannot be known, or cannot serve as a key exactly (the caller widens to
// the table).
//
// Text that spells a number but not an integer ('5.0', '5e0', '.5') is not
// a key anywhere: SQLite and MySQL read it as a number against an integer
// column ('5.0' matches the row whose key is 5), and normKey keeps it as
// text.
func (r resolver) value(col string, v classify.Value) (any, bool) {
	val, ok := argValue(v, r.args)
	if !ok || val == nil {
		return val, ok
	}
	if r.inexact[col] {
		return val, false
	}
	kind := r.kinds[strings.ToLower(col)]
	var text string
	switch x := val.(type) {
	case string:
		text = x
	case []byte:
		text = string(x)
	case time.Time:
		// A column without a time zone (PostgreSQL's timestamp) is
		// compared with the time's wall clock, which pgx sends as it is in
		// the time's own zone; normKey keeps the instant. Outside UTC they
		// differ: no key.
		if _, off := x.Zone(); off != 0 && kind&keyTime != 0 {
			return val, false
		}
		return val, kind&keyText == 0
	default:
		return val, kind&keyText == 0
	}
	if kind&keyTime != 0 {
		return val, false
	}
	_, isInt := normString(text).(int64)
	if isInt {
		return val, true
	}
	if r.collated || numericText(text) {
		return val, false
	}
	return val, true
}

// numericText reports whether s, spaces aside, reads as a number (one too
// large for a float64 included), or as an integer in Go's syntax for
// literals (0x10, 0o20, 1_000), which PostgreSQL 16 reads too.
func numericText(s string) bool {
	s = strings.TrimSpace(s)
	_, err := strconv.ParseFloat(s, 64)
	if err == nil || errors.Is(err, strconv.ErrRange) {
		return true
	}
	_, err = strconv.ParseInt(s, 0, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

// argValue returns the value of v in a statement run with args.
func argValue(v classify.Value, args []driver.NamedValue) (any, bool) {
	switch {
	case v.Expr:
		return nil, false
	case v.Arg > 0:
		for _, a := range args {
			if a.Ordinal == v.Arg && a.Name == "" {
				return a.Value, true
			}
		}
		if v.Arg <= len(args) {
			return args[v.Arg-1].Value, true
		}
		return nil, false
	case v.Named != "":
		for _, a := range args {
			if strings.EqualFold(a.Name, v.Named) {
				return a.Value, true
			}
		}
		return nil, false
	}
	return v.Literal, true
}

// whereKeys returns the keys of the rows that an UPDATE's or DELETE's
// conditions restrict it to, if they restrict every key column.
func whereKeys(pk []string, where []classify.Cond, r resolver) ([]any, bool) {
	where, ok := expandArrays(where, r)
	if !ok {
		return nil, false
	}
	// A condition on every key column at once (a tuple): its tuples.
	for _, c := range where {
		idx := r.columnIndexes(c.Columns, pk)
		if idx == nil {
			continue
		}
		keys := make([]any, 0, len(c.Values))
		for _, tuple := range c.Values {
			k, ok := tupleKey(pk, idx, tuple, r)
			if !ok {
				return nil, false
			}
			if k != nil {
				keys = append(keys, k)
			}
		}
		if len(keys) > maxKeys {
			return nil, false
		}
		return keys, true
	}
	// Else each key column restricted by some condition: the product.
	sets := make([][]any, len(pk))
	for i, col := range pk {
		for _, c := range where {
			j := r.index(c.Columns, col)
			if j < 0 {
				continue
			}
			var vals []any
			for _, tuple := range c.Values {
				v, ok := r.value(col, tuple[j])
				if !ok {
					return nil, false
				}
				if v != nil { // col = NULL matches no row
					vals = append(vals, v)
				}
			}
			if sets[i] == nil || len(vals) < len(sets[i]) {
				sets[i] = vals
				if sets[i] == nil {
					sets[i] = []any{}
				}
			}
		}
		if sets[i] == nil {
			return nil, false
		}
	}
	return product(sets)
}

// expandArrays replaces each array placeholder of a condition (col =
// ANY($1)) with the elements of its argument. ok is false when an argument
// is not an array idmap can read, or holds too many elements: the caller
// widens.
func expandArrays(where []classify.Cond, r resolver) ([]classify.Cond, bool) {
	has := false
	for _, c := range where {
		for _, tuple := range c.Values {
			for _, v := range tuple {
				has = has || v.Array
			}
		}
	}
	if !has {
		return where, true
	}
	out := make([]classify.Cond, len(where))
	for i, c := range where {
		out[i] = c
		if len(c.Columns) != 1 {
			continue
		}
		var vals [][]classify.Value
		for _, tuple := range c.Values {
			if len(tuple) != 1 || !tuple[0].Array {
				vals = append(vals, tuple)
				continue
			}
			plain := tuple[0]
			plain.Array = false
			arg, ok := argValue(plain, r.args)
			if !ok {
				return nil, false
			}
			elems, ok := arrayElems(arg)
			if !ok || len(vals)+len(elems) > maxKeys {
				return nil, false
			}
			for _, e := range elems {
				if e == nil {
					continue // NULL = … matches no row
				}
				vals = append(vals, []classify.Value{{Literal: e}})
			}
		}
		if vals == nil {
			vals = [][]classify.Value{} // an empty array: no row
		}
		out[i].Values = vals
	}
	return out, true
}

// arrayElems returns the elements of an array argument: a Go slice or
// array (not []byte), or the text of a PostgreSQL array of integers such as
// a driver.Valuer gives ("{1,2,3}").
func arrayElems(arg any) ([]any, bool) {
	if vr, ok := arg.(driver.Valuer); ok {
		v, err := callValuer(vr)
		if err != nil {
			return nil, false
		}
		arg = v
	}
	switch x := arg.(type) {
	case nil, []byte:
		if b, ok := x.([]byte); ok {
			return intArrayText(string(b))
		}
		return nil, false
	case string:
		return intArrayText(x)
	}
	rv := reflect.ValueOf(arg)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	if rv.Len() > maxKeys {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		e := rv.Index(i)
		if (e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface) && e.IsNil() {
			continue
		}
		if e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		out[i] = e.Interface()
	}
	return out, true
}

// intArrayText reads "{1,2,-3}"; anything but integers is refused.
func intArrayText(s string) ([]any, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return []any{}, true
	}
	parts := strings.Split(body, ",")
	if len(parts) > maxKeys {
		return nil, false
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// valuesKeys returns the keys of the rows an INSERT's VALUES give.
func valuesKeys(pk, cols []string, rows [][]classify.Value, r resolver) ([]any, bool) {
	if cols == nil || rows == nil {
		return nil, false
	}
	idx := r.columnIndexes(cols, pk)
	if idx == nil {
		return nil, false
	}
	if len(rows) > maxKeys {
		return nil, false
	}
	keys := make([]any, 0, len(rows))
	for _, row := range rows {
		parts := make([]any, len(pk))
		for i, j := range idx {
			if j >= len(row) {
				return nil, false
			}
			v, ok := r.value(pk[i], row[j])
			if !ok || v == nil {
				return nil, false
			}
			parts[i] = v
		}
		keys = append(keys, makeKey(parts))
	}
	return keys, true
}

// setKeys returns the new keys of rows whose key an UPDATE changes, when
// every key column it sets is set to a plain value.
func setKeys(pk []string, set []classify.Assign, old []any, r resolver) ([]any, bool) {
	newVals := make([]any, len(pk))
	setCol := make([]bool, len(pk))
	for _, a := range set {
		if a.Column == "" {
			return nil, false // not understood: any column may have changed
		}
		i := r.index(pk, a.Column)
		if i < 0 {
			continue
		}
		if !a.Plain {
			return nil, false
		}
		v, ok := r.value(pk[i], a.Value)
		if !ok || v == nil {
			return nil, false
		}
		newVals[i], setCol[i] = v, true
	}
	if len(pk) == 1 {
		return []any{normKey(newVals[0])}, true
	}
	keys := make([]any, 0, len(old))
	for _, k := range old {
		ck := k.(compositeKey)
		for i := range pk {
			if setCol[i] {
				ck[i] = normKey(newVals[i])
			}
		}
		keys = append(keys, ck)
	}
	return keys, true
}

// tupleKey returns the key that a tuple of values gives (nil if it holds a
// NULL key part: no row matches).
func tupleKey(pk []string, idx []int, tuple []classify.Value, r resolver) (any, bool) {
	parts := make([]any, len(pk))
	for i, j := range idx {
		if j >= len(tuple) {
			return nil, false
		}
		v, ok := r.value(pk[i], tuple[j])
		if !ok {
			return nil, false
		}
		if v == nil {
			return nil, true
		}
		parts[i] = v
	}
	return makeKey(parts), true
}

// product returns every key made of one value from each set.
func product(sets [][]any) ([]any, bool) {
	n := 1
	for _, s := range sets {
		n *= len(s)
		if n > maxKeys {
			return nil, false
		}
	}
	keys := make([]any, 0, n)
	parts := make([]any, len(sets))
	var rec func(i int)
	rec = func(i int) {
		if i == len(sets) {
			keys = append(keys, makeKey(parts))
			return
		}
		for _, v := range sets[i] {
			parts[i] = v
			rec(i + 1)
		}
	}
	rec(0)
	return keys, true
}

// makeKey returns the normalised key of key parts, in key column order.
func makeKey(parts []any) any {
	if len(parts) == 1 {
		return normKey(parts[0])
	}
	var ck compositeKey
	for i, p := range parts {
		if i < len(ck) {
			ck[i] = normKey(p)
		}
	}
	return ck
}

// foldTable returns the name under which a table's expiry is recorded: its
// last part, in lower case. Tables of one name in several schemas share it
// (wider, never narrower).
func foldTable(n classify.Name) string { return strings.ToLower(n.Table) }

// schemaChanged flushes the tables whose definition changed (or the whole
// database), unless the SchemaChange flush is turned off: then it only
// expires them. The foreign keys and triggers are read again before the
// next write.
func (db *database) schemaChanged(changes []classify.SchemaChange) {
	db.schema.Store(nil)
	db.schemaTried.Store(false)
	for _, sc := range changes {
		table := foldTable(sc.Table)
		if db.noFlush[signals.SchemaChange] {
			if table == "" {
				db.cdb.ExpireAll()
			} else {
				db.cdb.ExpireTable(table)
			}
			continue
		}
		flushDB(db.cdb, table, signals.SchemaChange)
		if table == "" {
			return
		}
	}
}
