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

// What the effects of a write depend on besides the statement: the primary
// keys of the tables (from the mapped types), and the foreign keys and
// triggers of the database (read from its catalogue).

// schemaInfo is what idmap read of a database's catalogue.
type schemaInfo struct {
	known    bool                // false: the catalogue could not be read; every write widens to the database
	actions  map[string][]string // parent → children that its ON DELETE/UPDATE actions write
	inherit  map[string][]string // table → its inheritance relatives (PostgreSQL: partitions, children, parents), both ways
	triggers map[string]bool     // tables with triggers or rules, and views
	writers  map[string]bool     // functions the database defines that may write (lower-cased names)
	readAt   time.Time           // when it was read
}

// TriggerWrites declares what the triggers on table write, so that a write
// to table expires those tables instead of the whole database. Without it,
// a table with triggers widens every write to the whole database. The same
// holds for a view that takes writes (declare its tables:
// TriggerWrites("users_v", "users")) and a PostgreSQL table with rules.
func TriggerWrites(table string, writes ...string) Option {
	return func(c *config) {
		if c.triggers == nil {
			c.triggers = make(map[string][]string)
		}
		t := strings.ToLower(baseTable(table))
		for _, w := range writes {
			c.triggers[t] = append(c.triggers[t], strings.ToLower(baseTable(w)))
		}
		if writes == nil {
			c.triggers[t] = []string{}
		}
	}
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

// catalogue holds, per dialect, the queries that read foreign keys (child
// table, parent table, ON UPDATE rule, ON DELETE rule); the tables whose
// writes reach other tables in ways idmap does not read (triggers, views
// that take writes, PostgreSQL's rules), which widen a write to the whole
// database unless TriggerWrites declares them; and, for PostgreSQL, table
// inheritance (child, parent), partitions included: a write to either
// table changes the rows the other shows; and the functions the database
// defines that may write (MySQL's stored functions, PostgreSQL's volatile
// functions outside its own schemas and its extensions): a statement that
// calls one, a SELECT included, widens to the whole database.
var catalogue = map[dialect]struct{ fks, triggers, inherits, writers string }{
	dialectSQLite: {
		fks: `SELECT m.name, p."table", p.on_update, p.on_delete
			FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p WHERE m.type = 'table'`,
		triggers: `SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger'`,
	},
	dialectMySQL: {
		fks: `SELECT TABLE_NAME, REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE
			FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()`,
		triggers: `SELECT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
			UNION SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()`,
		writers: `SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE = 'FUNCTION'`,
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
			WHERE p.provolatile = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
			AND NOT EXISTS (SELECT 1 FROM pg_depend d
				WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`,
	},
}

// readSchema reads foreign keys and triggers through a base connection. A
// dialect without a catalogue, or a read that fails, gives an unknown
// schema.
func readSchema(ctx context.Context, d dialect, bc driver.Conn) *schemaInfo {
	q, ok := catalogue[d]
	if !ok {
		return &schemaInfo{}
	}
	fks, err := baseQuery(ctx, bc, q.fks)
	if err != nil {
		return &schemaInfo{}
	}
	trs, err := baseQuery(ctx, bc, q.triggers)
	if err != nil {
		return &schemaInfo{}
	}
	var inh, wrs [][]driver.Value
	if q.inherits != "" {
		if inh, err = baseQuery(ctx, bc, q.inherits); err != nil {
			return &schemaInfo{}
		}
	}
	if q.writers != "" {
		if wrs, err = baseQuery(ctx, bc, q.writers); err != nil {
			return &schemaInfo{}
		}
	}
	si := &schemaInfo{known: true, actions: map[string][]string{}, inherit: map[string][]string{}, triggers: map[string]bool{}}
	edges := si.actions
	for _, fk := range fks {
		if acts(asString(fk[2])) || acts(asString(fk[3])) {
			p := strings.ToLower(asString(fk[1]))
			edges[p] = append(edges[p], strings.ToLower(asString(fk[0])))
		}
	}
	for _, row := range inh {
		c, p := strings.ToLower(asString(row[0])), strings.ToLower(asString(row[1]))
		si.inherit[c] = append(si.inherit[c], p)
		si.inherit[p] = append(si.inherit[p], c)
	}
	for _, row := range trs {
		si.triggers[strings.ToLower(asString(row[0]))] = true
	}
	for _, row := range wrs {
		if si.writers == nil {
			si.writers = map[string]bool{}
		}
		si.writers[strings.ToLower(asString(row[0]))] = true
	}
	return si
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
			rows, err = st.Query(vals) //nolint:staticcheck
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

type tableModels struct {
	gen      uint64
	pk       map[string][]string           // folded table → key columns; nil slice when types disagree
	models   map[string][]*model           // folded table → mapped types on it
	keyKinds map[string]map[string]keyKind // folded table → folded key column → what mapped types' fields of it are
}

// keyKind says what a key column's fields are, in the mapped types on its
// table (bits: several types may map one column).
type keyKind uint8

const (
	keyText keyKind = 1 << iota // a string or []byte field
	keyTime                     // a time.Time field
)

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
	tm := &tableModels{gen: g, pk: map[string][]string{}, models: map[string][]*model{}, keyKinds: map[string]map[string]keyKind{}}
	models.Range(func(_, v any) bool {
		m := v.(*model)
		if !m.mapped || m.err != nil {
			return true
		}
		t := strings.ToLower(m.ctype.Table)
		tm.models[t] = append(tm.models[t], m)
		cols := make([]string, len(m.pk))
		for i, fi := range m.pk {
			cols[i] = strings.ToLower(m.fields[fi].column)
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
				tm.keyKinds[t][cols[i]] |= k
			}
		}
		if old, ok := tm.pk[t]; ok && !sameColumns(old, cols) {
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

// callsWriter reports whether st calls a function of db that may write,
// as far as its catalogue has been read.
func (db *database) callsWriter(st *classify.Statement) bool {
	if len(st.Calls) == 0 {
		return false
	}
	si := db.schema.Load()
	if si == nil || len(si.writers) == 0 {
		return false
	}
	for _, c := range st.Calls {
		if si.writers[c] {
			return true
		}
	}
	return false
}
