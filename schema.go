package idmap

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-idmap/idmap/classify"
)

// schemaInfo is what idmap read of a database's catalogue. What the effects
// of a write depend on besides the statement: the primary keys of the
// tables (from the mapped types), and the foreign keys and triggers of the
// database (read from its catalogue).
//
// Relations are keyed by their lower-cased name. Where names are qualified
// by database (MySQL, qualified), each relation is also keyed
// "schema.name", and the bare name holds the union over every database:
// what a name reaches when its database is not known.
//
// A schemaInfo is built by readSchema and read-only once stored in
// database.schema, which is replaced, never changed in place.
type schemaInfo struct {
	known     bool                // false: the catalogue could not be read; every write widens to the database
	qualified bool                // keys "schema.name" exist besides the bare names (MySQL)
	actions   map[string][]string // parent → children that its ON DELETE/UPDATE actions write
	inherit   map[string][]string // table → its inheritance relatives (PostgreSQL: partitions, children, parents), both ways
	// triggers: the relations whose writes run code that idmap does not
	// read: triggers, rules, views that take writes, and (PostgreSQL)
	// column defaults and checks that can reach a writing function.
	triggers map[string]bool
	writers  map[string]bool // functions the database defines that may write (lower-cased names)
	// unbounded: the names whose mere mention in a statement means it may
	// write anything: writing functions, views whose definition can reach
	// one or is unknown, tables whose row-level policies can reach one.
	// By bare name (the union over databases); unboundedIn by database,
	// then name (qualified).
	unbounded   map[string]bool
	unboundedIn map[string]map[string]bool
	// unboundedOps: operators that run a writing function (PostgreSQL).
	unboundedOps map[string]bool
	// everything: a writing function runs where no name shows it (a cast):
	// every statement may write anything.
	everything bool
	// inexact: per table, the columns that the engine compares under a
	// nondeterministic collation (PostgreSQL): a text value is not a key.
	inexact map[string]map[string]bool
	readAt  time.Time // when it was read
}

// key returns the key under which the catalogue knows the relation n, on a
// connection whose current database is cur ("" when unknown).
func (si *schemaInfo) key(n classify.Name, cur string) string {
	t := strings.ToLower(n.Table)
	if !si.qualified {
		return t
	}
	sc := n.Schema
	if sc == "" {
		sc = cur
	}
	if sc == "" {
		return t // the union over every database
	}
	return strings.ToLower(sc) + "." + t
}

// bare returns the table name of a key: the name under which maps expire.
func (si *schemaInfo) bare(k string) string {
	if si.qualified {
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			return k[i+1:]
		}
	}
	return k
}

// mentionsUnbounded reports whether a statement names something whose
// effects the catalogue cannot bound (see unbounded), on a connection
// whose current database is cur (lower-cased; "" when unknown).
func (si *schemaInfo) mentionsUnbounded(st *classify.Statement, cur string) bool {
	if si.everything {
		return true
	}
	if len(si.unbounded) > 0 {
		// Names holds every name of Calls too.
		for _, n := range st.Names {
			if si.isUnbounded(n, cur) {
				return true
			}
		}
	}
	for _, run := range st.Operators {
		for op := range si.unboundedOps {
			if strings.Contains(run, op) {
				return true
			}
		}
	}
	return false
}

// isUnbounded reports whether the name n, as Statement.Names gives it ("a"
// or "a.b"), is unbounded.
func (si *schemaInfo) isUnbounded(n, cur string) bool {
	if i := strings.IndexByte(n, '.'); i >= 0 {
		if si.qualified {
			return si.unboundedIn[n[:i]][n[i+1:]]
		}
		return si.unbounded[n[i+1:]]
	}
	if si.qualified && cur != "" {
		return si.unboundedIn[cur][n]
	}
	return si.unbounded[n]
}

// markUnbounded marks the lower-cased key k ("name", or "schema.name"
// where qualified) unbounded, and its bare name too.
func (si *schemaInfo) markUnbounded(k string) {
	if si.qualified {
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			if si.unboundedIn == nil {
				si.unboundedIn = map[string]map[string]bool{}
			}
			if si.unboundedIn[k[:i]] == nil {
				si.unboundedIn[k[:i]] = map[string]bool{}
			}
			si.unboundedIn[k[:i]][k[i+1:]] = true
			k = k[i+1:]
		}
	}
	si.unbounded[k] = true
}

// schemaFor makes sure db's catalogue has been read, on c (idle, before a
// write is sent). It is read again after a schema change.
func (db *database) schemaFor(ctx context.Context, c *connState) *schemaInfo {
	old := db.schema.Load()
	if old != nil && time.Since(old.readAt) < schemaTTL {
		return old
	}
	si := readSchema(ctx, db.dialect, c.base)
	if si.known {
		si.readAt = time.Now()
		// Only over what this read replaces: a schema change stored
		// meanwhile (nil) may postdate the read, which must not undo it;
		// another read stored meanwhile is as good as this one.
		db.schema.CompareAndSwap(old, si)
		return si
	}
	if old != nil {
		return old // a re-read that failed: keep what was read
	}
	// A failed read (a dead connection, no rights) is not kept: the next
	// write tries again, and meanwhile this one widens to the database.
	return si
}

// schemaTTL is how long idmap trusts what it read of a catalogue. Its own
// DDL makes it read again at once; DDL it does not see (a migration run by
// another process adding a trigger, a view or a foreign key) is found
// within schemaTTL, at the next write.
var schemaTTL = time.Minute

// catalogue holds, per dialect, the queries that read what the effects of
// a statement depend on besides its text:
//   - fks: foreign keys (child, parent, ON UPDATE rule, ON DELETE rule);
//   - triggers: the relations whose writes run code (triggers, views that
//     take writes, PostgreSQL's rules), which widen a write to the whole
//     database unless TriggerWrites declares them;
//   - inherits (PostgreSQL): table inheritance (child, parent), partitions
//     included: a write to either changes the rows the other shows;
//   - writers: the functions the database defines that may write (MySQL's
//     stored functions, PostgreSQL's volatile functions outside its own
//     schemas and its extensions);
//   - views: each view's definition (empty when it cannot be read), which
//     idmap classifies: a view that can reach a writing function, or whose
//     definition is unknown, makes every statement that names it unbounded;
//   - code (PostgreSQL): the functions that column defaults, checks and
//     row-level policies run, by table ("w": on write, "r": on read too);
//   - operators (PostgreSQL): user-defined operators and their functions;
//   - casts (PostgreSQL): the functions of user-defined casts;
//   - inexact (PostgreSQL): the columns under a nondeterministic collation.
//
// MySQL's queries read every database the connection can see (the rows
// name their database), so that the result does not depend on the
// connection's current database, and a statement that names otherdb.t
// finds otherdb's catalogue.
type catalogueQueries struct{ fks, triggers, inherits, writers, views, code, operators, casts, inexact string }

const mysqlSystem = `('mysql', 'sys', 'information_schema', 'performance_schema')`

var catalogue = map[dialect]catalogueQueries{
	dialectSQLite: {
		fks: `SELECT m.name, p."table", p.on_update, p.on_delete
			FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p WHERE m.type = 'table'`,
		triggers: `SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name NOT LIKE 'idmap|_cl|_%' ESCAPE '|'`,
	},
	dialectMySQL: {
		fks: `SELECT CONCAT(CONSTRAINT_SCHEMA, '.', TABLE_NAME), CONCAT(UNIQUE_CONSTRAINT_SCHEMA, '.', REFERENCED_TABLE_NAME), UPDATE_RULE, DELETE_RULE
			FROM information_schema.REFERENTIAL_CONSTRAINTS`,
		triggers: `SELECT CONCAT(EVENT_OBJECT_SCHEMA, '.', EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS
			WHERE TRIGGER_NAME NOT LIKE 'idmap|_cl|_%' ESCAPE '|'
			UNION SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ` + mysqlSystem,
		writers: `SELECT CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) FROM information_schema.ROUTINES
			WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_SCHEMA NOT IN ` + mysqlSystem,
		views: `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), VIEW_DEFINITION FROM information_schema.VIEWS
			WHERE TABLE_SCHEMA NOT IN ` + mysqlSystem,
	},
	dialectPostgres: {
		fks: `SELECT cl.relname, pl.relname, c.confupdtype::text, c.confdeltype::text
			FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pl ON pl.oid = c.confrelid
			WHERE c.contype = 'f'`,
		triggers: `SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
			UNION SELECT relname FROM pg_class WHERE relkind = 'v'
			UNION SELECT tablename FROM pg_rules`,
		inherits: `SELECT c.relname, p.relname FROM pg_inherits i
			JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent`,
		// Functions of extensions (uuid_generate_v4, PostGIS's) are left
		// out: they are not the application's, and they write no rows.
		writers: `SELECT DISTINCT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE p.provolatile = 'v' AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
			AND n.nspname NOT IN ('pg_catalog', 'information_schema')
			AND NOT EXISTS (SELECT 1 FROM pg_depend d
				WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`,
		views: `SELECT c.relname, coalesce(pg_get_viewdef(c.oid), '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
		code: `SELECT c.relname, p.proname, CASE WHEN d.classid = 'pg_policy'::regclass THEN 'r' ELSE 'w' END
			FROM pg_depend d
			LEFT JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass AND o.oid = d.refobjid
			JOIN pg_proc p ON p.oid = CASE WHEN d.refclassid = 'pg_proc'::regclass THEN d.refobjid ELSE o.oprcode::oid END
			JOIN pg_class c ON c.oid = CASE d.classid
				WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = d.objid)
				WHEN 'pg_constraint'::regclass THEN (SELECT conrelid FROM pg_constraint WHERE oid = d.objid)
				ELSE (SELECT polrelid FROM pg_policy WHERE oid = d.objid) END
			WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
			AND d.classid IN ('pg_attrdef'::regclass, 'pg_constraint'::regclass, 'pg_policy'::regclass)`,
		operators: `SELECT o.oprname, p.proname FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
			JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`,
		casts: `SELECT p.proname FROM pg_cast k JOIN pg_proc p ON p.oid = k.castfunc
			JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`,
		inexact: `SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_collation co ON co.oid = a.attcollation
			WHERE NOT co.collisdeterministic AND a.attnum > 0 AND NOT a.attisdropped`,
	},
}

// readSchema reads foreign keys, triggers and the rest of the catalogue
// (see catalogue) through a base connection. A dialect without a
// catalogue, or a read that fails, gives an unknown schema.
func readSchema(ctx context.Context, d dialect, bc driver.Conn) *schemaInfo {
	q, ok := catalogue[d]
	if !ok {
		return &schemaInfo{}
	}
	var res [9][][]driver.Value
	for i, query := range [9]string{q.fks, q.triggers, q.inherits, q.writers, q.views, q.code, q.operators, q.casts, q.inexact} {
		if query == "" {
			continue
		}
		rows, err := baseQuery(ctx, bc, query)
		if err != nil {
			return &schemaInfo{}
		}
		res[i] = rows
	}
	fks, trs, inh, wrs, views, code, ops, casts, inexact := res[0], res[1], res[2], res[3], res[4], res[5], res[6], res[7], res[8]
	si := &schemaInfo{known: true, qualified: d == dialectMySQL, actions: map[string][]string{}, inherit: map[string][]string{},
		triggers: map[string]bool{}, writers: map[string]bool{}, unbounded: map[string]bool{}}
	// keys returns the keys of a name as the rows give it: itself, and
	// for a qualified name also its bare name (the union over databases).
	keys := func(v driver.Value) []string {
		k := strings.ToLower(asString(v))
		if b := si.bare(k); b != k {
			return []string{k, b}
		}
		return []string{k}
	}
	for _, fk := range fks {
		if acts(asString(fk[2])) || acts(asString(fk[3])) {
			child := strings.ToLower(asString(fk[0]))
			for _, p := range keys(fk[1]) {
				si.actions[p] = append(si.actions[p], child)
			}
		}
	}
	for _, row := range inh {
		c, p := strings.ToLower(asString(row[0])), strings.ToLower(asString(row[1]))
		si.inherit[c] = append(si.inherit[c], p)
		si.inherit[p] = append(si.inherit[p], c)
	}
	for _, row := range trs {
		for _, k := range keys(row[0]) {
			si.triggers[k] = true
		}
	}
	for _, row := range wrs {
		for _, k := range keys(row[0]) {
			si.writers[k] = true
		}
		si.markUnbounded(strings.ToLower(asString(row[0])))
	}
	for _, row := range code {
		if !si.writers[strings.ToLower(asString(row[1]))] {
			continue
		}
		t := strings.ToLower(asString(row[0]))
		si.triggers[t] = true
		if asString(row[2]) == "r" {
			si.markUnbounded(t)
		}
	}
	for _, row := range ops {
		if si.writers[strings.ToLower(asString(row[1]))] {
			if si.unboundedOps == nil {
				si.unboundedOps = map[string]bool{}
			}
			si.unboundedOps[asString(row[0])] = true
		}
	}
	for _, row := range casts {
		si.everything = si.everything || si.writers[strings.ToLower(asString(row[0]))]
	}
	for _, row := range inexact {
		t := strings.ToLower(asString(row[0]))
		if si.inexact == nil {
			si.inexact = map[string]map[string]bool{}
		}
		if si.inexact[t] == nil {
			si.inexact[t] = map[string]bool{}
		}
		si.inexact[t][asString(row[1])] = true
	}
	si.boundViews(d, views)
	return si
}

// boundViews marks the views that a statement cannot name without
// becoming unbounded: those whose definition is unknown, or can write, or
// names something unbounded (a writing function, an operator that runs
// one, another such view). The definitions are classified as any
// statement is, in the database's dialect; unqualified names in them
// resolve in the view's own database.
func (si *schemaInfo) boundViews(d dialect, views [][]driver.Value) {
	type view struct {
		key string
		cur string
		st  *classify.Statement
	}
	var vs []view
	for _, row := range views {
		k := strings.ToLower(asString(row[0]))
		v := view{key: k}
		if b := si.bare(k); b != k {
			v.cur = k[:len(k)-len(b)-1]
		}
		def := strings.TrimSpace(asString(row[1]))
		if def != "" {
			v.st = classify.Classify(d.classify(), def)
		}
		vs = append(vs, v)
	}
	for changed := true; changed; {
		changed = false
		for _, v := range vs {
			if si.isUnbounded(v.key, v.cur) {
				continue
			}
			if v.st == nil || mayChange(v.st) || si.mentionsUnbounded(v.st, v.cur) {
				si.markUnbounded(v.key)
				changed = true
			}
		}
	}
}

// acts reports whether a foreign key action writes to the child.
func acts(rule string) bool {
	switch strings.ToUpper(strings.TrimSpace(rule)) {
	case "CASCADE", "SET NULL", "SET DEFAULT", "C", "N", "D":
		return true
	}
	return false
}

// baseQuery runs a query on a base connection, bypassing idmap, and returns
// its rows.
func baseQuery(ctx context.Context, bc driver.Conn, query string, args ...any) ([][]driver.Value, error) {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	var rows driver.Rows
	var err error
	if q, ok := bc.(driver.QueryerContext); ok {
		rows, err = q.QueryContext(ctx, query, named)
	} else {
		err = driver.ErrSkip
	}
	if err == driver.ErrSkip {
		var st driver.Stmt
		if pc, ok := bc.(driver.ConnPrepareContext); ok {
			st, err = pc.PrepareContext(ctx, query)
		} else {
			st, err = bc.Prepare(query)
		}
		if err != nil {
			return nil, err
		}
		defer st.Close()
		if sq, ok := st.(driver.StmtQueryContext); ok {
			rows, err = sq.QueryContext(ctx, named)
		} else {
			vals := make([]driver.Value, len(args))
			for i, a := range args {
				vals[i] = a
			}
			//lint:ignore SA1019 the base has no StmtQueryContext: its Query is all there is
			rows, err = st.Query(vals)
		}
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]driver.Value
	for {
		dest := make([]driver.Value, len(rows.Columns()))
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, err
		}
		// A driver may hand out []byte in a buffer that its next Next
		// overwrites (go-sql-driver/mysql does): keep copies.
		for i, v := range dest {
			if b, ok := v.([]byte); ok {
				dest[i] = bytes.Clone(b)
			}
		}
		out = append(out, dest)
	}
}

// asString reads a catalogue value as text, as drivers return it (string or
// []byte); NULL is "".
func asString(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// Primary keys by table, from the mapped types. The index is rebuilt when a
// model is added.
var tableIndex struct {
	gen   atomic.Uint64 // bumped when a mapped model is built
	mu    sync.Mutex
	built atomic.Pointer[tableModels]
}

// tableModels is the index of tableIndex, built from the models mapped at
// generation gen and read-only once built.
type tableModels struct {
	gen      uint64
	pk       map[string][]string           // folded table → key columns; nil slice when types disagree
	models   map[string][]*model           // folded table → mapped types on it
	keyKinds map[string]map[string]keyKind // folded table → folded key column → what mapped types' fields of it are
	// names: the lower-cased names of the mapped tables (and of each part
	// of a qualified one) and of their columns: what a read of mapped
	// tables names.
	names map[string]bool
}

// keyKind says what a key column's fields are, in the mapped types on its
// table (bits: several types may map one column).
type keyKind uint8

const (
	keyText keyKind = 1 << iota // a string or []byte field
	keyTime                     // a time.Time field
)

// currentTables returns the index for the current generation, building it
// when a mapped model was added since the last build. A hit takes no lock;
// a build takes tableIndex.mu, and the generation is read again under it, so
// that concurrent callers build once.
func currentTables() *tableModels {
	g := tableIndex.gen.Load()
	if tm := tableIndex.built.Load(); tm != nil && tm.gen == g {
		return tm
	}
	tableIndex.mu.Lock()
	defer tableIndex.mu.Unlock()
	g = tableIndex.gen.Load()
	if tm := tableIndex.built.Load(); tm != nil && tm.gen == g {
		return tm
	}
	tm := &tableModels{gen: g, pk: map[string][]string{}, models: map[string][]*model{}, keyKinds: map[string]map[string]keyKind{}, names: map[string]bool{}}
	models.Range(func(_, v any) bool {
		m := v.(*model)
		if !m.mapped || m.err != nil {
			return true
		}
		t := strings.ToLower(m.ctype.Table)
		tm.models[t] = append(tm.models[t], m)
		full := strings.ToLower(m.table)
		tm.names[full] = true
		for _, part := range strings.Split(full, ".") {
			tm.names[strings.Trim(part, "\"`[]")] = true
		}
		tm.names[t] = true
		for _, f := range m.fields {
			tm.names[strings.ToLower(f.column)] = true
		}
		cols := make([]string, len(m.pk))
		for i, fi := range m.pk {
			// As written: PostgreSQL compares column names exactly (idmap
			// quotes them), the others without regard to case.
			cols[i] = m.fields[fi].column
			lc := strings.ToLower(cols[i])
			var k keyKind
			switch ft := derefType(m.fields[fi].typ); {
			case ft.Kind() == reflect.String || (ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Uint8):
				k = keyText
			case ft == timeType:
				k = keyTime
			}
			if k != 0 {
				if tm.keyKinds[t] == nil {
					tm.keyKinds[t] = map[string]keyKind{}
				}
				tm.keyKinds[t][lc] |= k
			}
		}
		if old, ok := tm.pk[t]; ok && !(resolver{cols: colsFold}).sameColumns(old, cols) {
			tm.pk[t] = nil // types disagree on the key: expire by table
		} else if !ok {
			tm.pk[t] = cols
		}
		return true
	})
	tableIndex.built.Store(tm)
	return tm
}

// derefType returns what t points to, through any number of pointers.
func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// pkOf returns the key columns of table, or nil if no mapped type (or no
// single key) is known for it.
func (db *database) pkOf(table string) []string {
	return currentTables().pk[table]
}

// removeShared forgets the entries of table's types under the given
// (normalised) keys in the shared map. Scopes find the expiry instead.
func (db *database) removeShared(table string, keys []any) {
	shared := db.cdb.Shared()
	for _, m := range currentTables().models[table] {
		for _, k := range keys {
			parts := []any{k}
			if ck, ok := k.(compositeKey); ok {
				parts = ck[:len(m.pk)]
			}
			tk, err := m.keyOf("expire", parts)
			if err == nil {
				shared.Remove(m.ctype, tk, nil)
			}
		}
	}
}
