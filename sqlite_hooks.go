package idmap

import (
	"context"
	"database/sql/driver"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/go-idmap/idmap/classify"
)

// hookMode says which of SQLite's hooks, the engine's own report of row
// changes, report a connection's changes. On every connection of a SQLite
// database idmap registers the engine's hooks on the base driver's
// connection, reached through interface assertions and reflection (idmap
// imports no driver):
//
//   - the preupdate hook (modernc.org/sqlite always; mattn/go-sqlite3 built
//     with the tag sqlite_preupdate_hook) reports every row that a
//     statement changes: its own rows, what triggers write (TEMP and
//     ATTACHed ones included), foreign-key actions, the rows that REPLACE
//     and ON CONFLICT REPLACE delete, DELETE without WHERE, WITHOUT ROWID
//     tables. Every reported row expires its key, in addition to what the
//     statement reader infers; with ExactExpiry, instead of it (the reader
//     keeps schema changes, transaction control and whole-database
//     statements; a database with virtual tables keeps the reader).
//   - the update hook (mattn always) misses REPLACE deletions, the
//     truncation of DELETE without WHERE and WITHOUT ROWID tables. With
//     only it, the statement reader keeps its whole role and widens for
//     what that hook misses (tables whose definition can REPLACE, triggers
//     outside the main schema's catalogue); the hook's rows only add.
//
// mattn without the tag has RegisterPreUpdateHook, which does nothing. Both
// hooks are registered until one change tells which fires: a preupdate
// report proves the hook works (the update hook is then dropped), an
// update report with no preupdate report before it proves it does not.
// The answer is kept per base connection type, for later connections.
//
// The hooks run synchronously in the goroutine running the statement, while
// it runs. They only collect keys; the statement's end (after, or the rows'
// Close for the query path) turns them into effects, expired and recorded
// with the transaction like any tracked write; what a statement that failed
// had changed (SQLite may keep it) is applied when the connection goes back
// to the pool. Reports count only while a statement sent through idmap
// runs: one sent on the base connection (Unwrap) bypasses idmap. Nothing
// runs SQL inside a hook: what a hook needs to know of the tables (which
// column is the key) is read between statements, in the connection's
// catalogue.
type hookMode uint8

const (
	hookOff    hookMode = iota // not SQLite, turned off, or the driver has no hooks
	hookUpdate                 // only the update hook is known to report (or the preupdate hook is not yet proven)
	hookPre                    // the preupdate hook reports every row change
)

// String names the mode as HookMode reports it to the tests.
func (m hookMode) String() string {
	switch m {
	case hookUpdate:
		return "update"
	case hookPre:
		return "preupdate"
	}
	return "off"
}

// engineHooksOff turns the hooks off for connections opened after it is set
// (tests: the randomized model must still find violations without them).
var engineHooksOff atomic.Bool

// preupdateWorks is, by base connection type, whether its preupdate hook
// reports (bool), once a change has shown it.
var preupdateWorks sync.Map

// SQLite's operation codes, as the hooks report them.
const (
	sqliteDelete = 9
	sqliteInsert = 18
	sqliteUpdate = 23
)

// sqliteHooks is the hook state of one connection. Its fields are used by
// the goroutine that holds the connection (database/sql hands a connection
// to one goroutine at a time, and the hooks run in it).
type sqliteHooks struct {
	c    *connState
	mode hookMode
	typ  reflect.Type // the base connection's type
	base any          // the base connection, with the Register methods

	active bool // a statement sent through idmap runs (or ran and failed): reports count
	// open counts the rows of statements through idmap not yet closed: a
	// driver may run a statement at the first Next (a write with RETURNING
	// then changes its rows after the query returned), and a transaction
	// may read several rows at once. Reports count while any is open.
	open int
	// writing counts the open rows of writes outside a transaction (…
	// RETURNING). SQLite commits such a write only when its rows are done,
	// and every write the connection makes meanwhile joins its implicit
	// transaction: held keeps what those writes expired (heldAll: too
	// many, the whole database), to expire and publish it again when the
	// last such rows close and all of it commits. Reports are not applied
	// apart while writing rows are open: they join the closing rows'
	// effects, or the Exec that drains them.
	writing    int
	held       []*effects
	heldAll    bool
	updateOn   bool // the update hook is registered
	preSeen    bool // the preupdate hook has reported a change on this connection
	dropUpdate bool // the update hook is to be unregistered (between statements)

	// Changes reported since the last drain, by folded table: keys of
	// the rows changed, and in removes those of them that no longer exist
	// under that key (deleted, or moved to another key).
	keys    map[string][]any
	removes map[string][]any
	tables  map[string]bool // tables changed where the key is unknown
	n       int             // reports since the last drain

	cat *sqliteCatalog // read between statements; nil until read

	// The preupdate data of the report being handled, to read its values;
	// scratch and parts are buffers reused for a row's values and a key's
	// parts.
	pre        preReader
	cur        unsafe.Pointer // fast path: the driver's data (one of the two below), layout-checked
	mattnCur   mattnPreData
	moderncCur moderncPreData
	curRV      reflect.Value // reflection path: the driver's data
	scratch    []any         // reused buffer for the values of a row
	parts      [maxKeyParts]any

	// updated: keys of UPDATEs the update hook reported (it does not say
	// whether the key changed), by folded table.
	updated map[string][]any
}

// preReader reads the old or new values of the change being reported.
type preReader struct {
	old, new func(unsafe.Pointer, ...any) error // fast path (nil if not usable)
	oldM     reflect.Method                     // reflection path
	newM     reflect.Method
}

// sqliteCatalog is what a connection knows of its schemas, for the hooks
// (between statements; never read inside a hook).
type sqliteCatalog struct {
	si  *schemaInfo // the database's catalogue when this was read: another means DDL happened
	gen uint64      // the mapped models when this was read
	ok  bool        // read completely; else every write widens to the whole database

	virtual     bool            // a virtual table exists: no hook reports its rows
	replacing   map[string]bool // folded tables whose definition can REPLACE (ON CONFLICT REPLACE)
	extTriggers map[string]bool // folded tables with triggers outside the main schema (TEMP, ATTACHed)
	// extTables: folded tables of the schemas outside main, when one of
	// them has a WITHOUT ROWID table: the reader does not read their
	// foreign keys, and the update hook does not report such a table.
	extTables map[string]bool
	// tables: schema → table name as SQLite reports it → key info.
	tables map[string]map[string]*tableInfo
}

// tableInfo says how a hook report names a mapped row of one table.
type tableInfo struct {
	folded string
	models []*model // the mapped types on the table
	intKey bool     // every one has a single int64 key field
	rowid  bool     // the mapped key is the table's rowid (INTEGER PRIMARY KEY)
	cols   []int    // else: the key columns' positions, in key order
	width  int      // else: the values to read of a row (the last key column's position + 1)
}

// updateHooker is a base connection with SQLite's update hook.
type updateHooker interface {
	RegisterUpdateHook(func(int, string, string, int64))
}

// attachHooks registers the engine's hooks on c's base connection, if it
// is SQLite's and has them.
func attachHooks(c *connState) {
	if c.db.dialect != dialectSQLite || engineHooksOff.Load() {
		return
	}
	base := hookBase(c.base)
	if base == nil {
		return
	}
	h := &sqliteHooks{c: c, base: base, typ: reflect.TypeOf(base)}
	known, isKnown := preupdateWorks.Load(h.typ)
	pre := !isKnown || known.(bool)
	if pre && h.registerPre() {
		h.mode = hookUpdate // until a report proves the preupdate hook
		if isKnown {
			h.mode = hookPre
		}
	}
	if h.mode != hookPre {
		if u, ok := base.(updateHooker); ok {
			u.RegisterUpdateHook(h.update)
			h.updateOn = true
			h.mode = hookUpdate
		}
	}
	if h.mode == hookOff {
		return
	}
	c.hooks = h
}

// readRow reads the old (or new) values of the change being reported into
// dest.
func (h *sqliteHooks) readRow(newRow bool, dest []any) error {
	if h.cur != nil {
		if newRow {
			return h.pre.new(h.cur, dest...)
		}
		return h.pre.old(h.cur, dest...)
	}
	m := h.pre.oldM
	if newRow {
		m = h.pre.newM
	}
	p := reflect.New(h.curRV.Type())
	p.Elem().Set(h.curRV)
	out := m.Func.CallSlice([]reflect.Value{p, reflect.ValueOf(dest)})
	if err, _ := out[0].Interface().(error); err != nil {
		return err
	}
	return nil
}

// report is the preupdate hook: a row of schema.table is about to change.
func (h *sqliteHooks) report(op int, schema, table string, oldRowid, newRowid int64) {
	if !h.preSeen {
		h.preSeen = true
		if h.mode != hookPre {
			h.mode = hookPre
			h.dropUpdate = h.updateOn
			preupdateWorks.Store(h.typ, true)
		}
	}
	if !h.active {
		return // a statement sent on the base connection: it bypasses idmap
	}
	h.n++
	ti := h.info(schema, table)
	if ti == nil {
		h.widen(table)
		return
	}
	var oldKey, newKey any
	var ok bool
	if op != sqliteInsert {
		if oldKey, ok = h.rowKey(ti, oldRowid, false); !ok {
			h.widen(table)
			return
		}
	}
	if op != sqliteDelete {
		if newKey, ok = h.rowKey(ti, newRowid, true); !ok {
			h.widen(table)
			return
		}
	}
	switch op {
	case sqliteInsert:
		h.addKey(ti.folded, newKey, false)
	case sqliteDelete:
		h.addKey(ti.folded, oldKey, true)
	default:
		moved := oldKey != newKey
		h.addKey(ti.folded, oldKey, moved)
		if moved {
			h.addKey(ti.folded, newKey, false)
		}
	}
}

// rowKey returns the normalised key, as the mapped types on the table hold
// it, of the reported row, old or new: from its rowid where the key is the
// rowid, else from its values. ok is false when some mapped type cannot
// hold it as a key (the caller widens to the table).
func (h *sqliteHooks) rowKey(ti *tableInfo, rowid int64, newRow bool) (any, bool) {
	if ti.rowid {
		if ti.intKey {
			return rowid, true // the common case: no conversion, no allocation
		}
		h.parts[0] = rowid
		return ti.typedKey(h.parts[:1])
	}
	n := ti.width
	if cap(h.scratch) < n {
		h.scratch = make([]any, n)
	}
	dest := h.scratch[:n]
	clear(dest)
	if err := h.readRow(newRow, dest); err != nil {
		return nil, false
	}
	for i, c := range ti.cols {
		if dest[c] == nil {
			return nil, false // a NULL key: no mapped row has it, but widen
		}
		h.parts[i] = dest[c]
	}
	k, ok := ti.typedKey(h.parts[:len(ti.cols)])
	clear(dest)
	clear(h.parts[:])
	return k, ok
}

// typedKey converts raw key values to the key of each mapped type on the
// table, normalised as expiry records keys. Types that disagree (a value
// that one type holds and another cannot) widen.
func (ti *tableInfo) typedKey(parts []any) (any, bool) {
	var out any
	for i, m := range ti.models {
		k, err := m.keyOf("expire", parts)
		if err != nil {
			return nil, false
		}
		nk := normKey(k)
		if i > 0 && nk != out {
			return nil, false
		}
		out = nk
	}
	return out, out != nil
}

// update is the update hook: a row of schema.table has changed. A report
// with no preupdate report before it shows that the preupdate hook does not
// fire.
func (h *sqliteHooks) update(op int, schema, table string, rowid int64) {
	if h.mode == hookPre {
		return // the preupdate hook reported it
	}
	if !h.preSeen {
		// Once, not per row: a Store on the shared map is a write every
		// connection of the type contends on.
		if works, known := preupdateWorks.Load(h.typ); !known || works.(bool) {
			preupdateWorks.Store(h.typ, false)
		}
	}
	if !h.active {
		return
	}
	h.n++
	ti := h.info(schema, table)
	if ti == nil || !ti.rowid {
		h.widen(table)
		return
	}
	key, ok := h.rowKey(ti, rowid, true)
	if !ok {
		h.widen(table)
		return
	}
	if op == sqliteUpdate {
		// The update hook does not give the old rowid of an UPDATE, which
		// may differ: the key stands for the table unless the statement
		// reader keyed that row (it follows key changes itself).
		if h.updated == nil {
			h.updated = map[string][]any{}
		}
		h.updated[ti.folded] = append(h.updated[ti.folded], key)
		return
	}
	h.addKey(ti.folded, key, op == sqliteDelete)
}

// info returns the key info of schema.table, or nil if it is not known (no
// mapped type, or not read yet): the caller widens to the table.
func (h *sqliteHooks) info(schema, table string) *tableInfo {
	if h.cat == nil || !h.cat.ok {
		return nil
	}
	return h.cat.tables[schema][table]
}

// widen records that table changed in rows the hooks cannot key: the whole
// table expires.
func (h *sqliteHooks) widen(table string) {
	if h.tables == nil {
		h.tables = map[string]bool{}
	}
	h.tables[strings.ToLower(table)] = true
}

// addKey records that the row with key of table (a folded name) changed,
// and was deleted if remove. A widened table takes no keys; past maxKeys
// keys, the table is widened instead.
func (h *sqliteHooks) addKey(table string, key any, remove bool) {
	if h.tables[table] {
		return
	}
	if h.keys == nil {
		h.keys, h.removes = map[string][]any{}, map[string][]any{}
	}
	ks := h.keys[table]
	if len(ks) >= maxKeys {
		h.widen(table)
		delete(h.keys, table)
		delete(h.removes, table)
		return
	}
	h.keys[table] = append(ks, key)
	if remove {
		h.removes[table] = append(h.removes[table], key)
	}
}

// hooksPending reports whether the hooks reported changes not yet drained.
func (c *connState) hooksPending() bool { return c.hooks != nil && c.hooks.n > 0 }

// drain adds the changes reported since the last drain to e, which holds
// what the statement reader inferred, if anything. A table that e expires
// whole already needs no keys. With readerCovers (the update hook only), a
// table that e names at all is left to the reader: what the engine changed
// in it besides the rows the statement names comes from triggers,
// foreign-key actions and REPLACE, which the reader widens for; the update
// hook adds the tables the reader did not see (a statement it misread).
// Every drain goes through drainInto, which decides readerCovers.
func (h *sqliteHooks) drain(e *effects, readerCovers bool) {
	if h.n == 0 {
		return
	}
	h.n = 0
	if e.all {
		h.clear()
		return
	}
	var named map[string]bool
	if len(e.tables) > 0 || readerCovers && len(e.keys) > 0 {
		named = make(map[string]bool, len(e.tables)+len(e.keys))
		for _, t := range e.tables {
			named[t] = true
		}
		if readerCovers {
			for _, tk := range e.keys {
				named[tk.table] = true
			}
		}
	}
	for t := range h.updated {
		if !named[t] {
			h.widen(t)
		}
	}
	for t := range h.tables {
		if !named[t] {
			e.widenTable(t)
		}
	}
	for t, ks := range h.keys {
		if h.tables[t] || named[t] || len(h.removes[t]) == 0 && keyedBy(e, t, ks) {
			continue
		}
		e.keys = append(e.keys, tableKeys{t, ks})
		if rs := h.removes[t]; len(rs) > 0 {
			e.removes = append(e.removes, tableKeys{t, rs})
		}
	}
	h.clear()
}

// drainInto adds to e, the effects of the statement that ran (or whose
// rows are closing), what the hooks reported since the last drain, by the
// rule of the connection's hook: the update hook leaves to the reader the
// tables it named (drain's readerCovers) once the catalogue is known; the
// preupdate hook reports every row. It reports whether there was anything.
func (h *sqliteHooks) drainInto(e *effects) bool {
	if h.n == 0 {
		return false
	}
	h.drain(e, h.mode != hookPre && h.cat != nil && h.cat.ok)
	return true
}

// keyedBy reports whether e expires the few keys ks of table t already
// (the reader keyed the statement's rows: the common write by key).
func keyedBy(e *effects, t string, ks []any) bool {
	if len(ks) > 4 {
		return false
	}
	for _, k := range ks {
		found := false
		for _, tk := range e.keys {
			if tk.table == t && slices.Contains(tk.keys, k) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// clear forgets what was drained. The slices now belong to the effects (a
// transaction may keep them): new ones are made next time.
func (h *sqliteHooks) clear() {
	clear(h.keys)
	clear(h.removes)
	clear(h.tables)
	clear(h.updated)
}

// hooksBefore prepares the hooks for a statement about to run on c: what
// an earlier statement that failed changed is applied (SQLite may have
// kept it), reports count from now on, and the catalogue is read if it is
// missing or out of date and the statement may write (a read sends nothing
// more to the server).
func (c *connState) hooksBefore(ctx context.Context, st *classify.Statement) {
	h := c.hooks
	if h == nil {
		return
	}
	if h.dropUpdate {
		h.dropUpdate = false
		if u, ok := h.base.(updateHooker); ok {
			u.RegisterUpdateHook(nil)
			h.updateOn = false
		}
	}
	if h.n > 0 {
		c.applyHooked(ctx)
	}
	h.active = true
	if !mayChange(st) {
		return
	}
	cat := h.cat
	if cat == nil || !cat.ok || cat.si != c.db.schema.Load() || cat.gen != tableIndex.gen.Load() {
		h.cat = readSQLiteCatalog(ctx, c)
	}
}

// hooksIdle is called between statements (rows closed, the connection
// back to the pool: pooled): what the last statement's end did not take is
// applied, and once no rows are open, reports no longer count until the
// next statement through idmap (a statement sent on the base connection
// through Unwrap bypasses idmap, as documented).
func (c *connState) hooksIdle(ctx context.Context, pooled bool) {
	h := c.hooks
	if h == nil {
		return
	}
	if pooled {
		h.open, h.writing = 0, 0
	}
	if h.writing > 0 {
		return // an uncommitted write's rows are open: see writing
	}
	if h.n > 0 {
		c.applyHooked(ctx)
	}
	if len(h.held) > 0 || h.heldAll {
		c.releaseHeld(ctx)
	}
	if h.open == 0 {
		h.active = false
	}
}

// holdUncommitted keeps e, what a write outside a transaction expired, for
// releaseHeld, if rows of an uncommitted write are open on the connection
// (see sqliteHooks.writing): e commits with them.
func (c *connState) holdUncommitted(e *effects) {
	h := c.hooks
	if h == nil || h.writing == 0 || h.heldAll {
		return
	}
	if len(h.held) >= maxPending {
		h.held, h.heldAll = nil, true
		return
	}
	h.held = append(h.held, e)
}

// releaseHeld expires and publishes again what writes expired while rows
// of an uncommitted write were open, now that all of it has committed.
func (c *connState) releaseHeld(ctx context.Context) {
	h := c.hooks
	held, all := h.held, h.heldAll
	h.held, h.heldAll = nil, false
	if all {
		c.db.cdb.ExpireAll()
	} else {
		for _, e := range held {
			c.db.expire(e)
		}
	}
	c.publishNow(ctx, held, all)
}

// hooksRowsOpened and hooksRowsClosing follow the rows of a statement
// through idmap, which may change rows while they are read (a driver that
// runs the statement at the first Next). What the hooks reported until the
// rows close belongs to that statement: it joins eff, its effects (nil for
// a read, whose reports hooksIdle applies), which its rows then expire and
// publish once, as the statement's end does on the Exec path.
func (c *connState) hooksRowsOpened(writing bool) {
	if h := c.hooks; h != nil {
		h.open++
		if writing {
			h.writing++
		}
	}
}

// hooksRowsClosing is called by the rows' Close (see hooksRowsOpened).
func (c *connState) hooksRowsClosing(eff *effects, writing bool) {
	h := c.hooks
	if h == nil {
		return
	}
	if h.open > 0 {
		h.open--
	}
	if writing && h.writing > 0 {
		h.writing--
	}
	if eff != nil && h.drainInto(eff) {
		c.db.logEffects(eff)
	}
}

// applyHooked expires, records and publishes what the hooks reported since
// the last drain: a write whose rows the statement's own end did not take
// (the query path's rows, or a statement that failed after changing rows
// that SQLite kept).
func (c *connState) applyHooked(ctx context.Context) {
	e := &effects{}
	c.hooks.drainInto(e)
	c.db.expire(e)
	c.db.logEffects(e)
	if c.tx != nil {
		c.tx.record(e)
		return
	}
	c.holdUncommitted(e) // commits with the open write's rows, if any
	c.publishNow(ctx, []*effects{e}, false)
}

// effectsFor is what a statement that ran on c changed: what the statement
// reader infers (its keys, or wider), and every row the engine reported.
// With ExactExpiry and the preupdate hook, the reader's inference about
// rows is dropped: what the engine reported is exactly what changed.
func (c *connState) effectsFor(st *classify.Statement, args []driver.NamedValue, cur string) *effects {
	h := c.hooks
	if h == nil {
		return c.db.effectsOf(st, args, cur)
	}
	var e *effects
	cat := h.cat
	switch {
	case cat == nil || !cat.ok:
		// What the connection's schemas hold is not known: no table can
		// be ruled out.
		e = c.db.effectsOf(st, args, cur)
		if len(st.Writes) > 0 {
			e.unknown()
		}
	case h.mode == hookPre && c.db.exact && !cat.virtual:
		// Every row change is reported (a virtual table's are not): the
		// reader keeps schema changes, whole-database statements and
		// transaction control.
		if len(st.Writes) > 0 {
			plain := *st
			plain.Writes = nil
			st = &plain
		}
		e = c.db.effectsOf(st, args, cur)
	case h.mode == hookPre:
		e = c.db.effectsOf(st, args, cur)
	default:
		e = c.db.effectsOf(st, args, cur)
		c.updateHookGaps(e, st)
	}
	h.drainInto(e)
	return e
}

// updateHookGaps widens e for what the update hook does not report and the
// reader does not read from the main schema's catalogue: the rows that a
// table's own ON CONFLICT REPLACE deletes (and the foreign-key actions on
// them), the writes of triggers outside the main schema (TEMP, ATTACHed),
// which may reach WITHOUT ROWID tables or REPLACE, and the foreign-key
// actions of schemas outside main that have WITHOUT ROWID tables.
func (c *connState) updateHookGaps(e *effects, st *classify.Statement) {
	if e.all {
		return
	}
	cat := c.hooks.cat
	si := c.db.schema.Load()
	for i := range st.Writes {
		w := &st.Writes[i]
		t := foldTable(w.Table)
		if cat.extTriggers[t] || cat.extTables[t] {
			e.all = true
			return
		}
		if cat.replacing[t] && w.Op != classify.Delete {
			e.widenTable(t)
			if si == nil || !c.db.reachEffects(e, si, t, true) {
				e.all = true
				return
			}
		}
	}
}

// readSQLiteCatalog reads, on c's base connection (between statements),
// what the hooks need: each schema's tables and triggers, and the key
// columns of the tables that mapped types use.
func readSQLiteCatalog(ctx context.Context, c *connState) *sqliteCatalog {
	cat := &sqliteCatalog{si: c.db.schema.Load(), gen: tableIndex.gen.Load(),
		replacing: map[string]bool{}, extTriggers: map[string]bool{}, tables: map[string]map[string]*tableInfo{}}
	tm := currentTables()
	dbs, err := baseQuery(ctx, c.base, "SELECT name FROM pragma_database_list")
	if err != nil {
		return cat
	}
	schemas := []string{"temp"}
	for _, row := range dbs {
		if s := asString(row[0]); s != "temp" {
			schemas = append(schemas, s)
		}
	}
	extTables := map[string]bool{}
	extWithoutRowid := false
	for _, s := range schemas {
		q := `SELECT type, name, tbl_name, sql FROM "` + strings.ReplaceAll(s, `"`, `""`) + `".sqlite_master WHERE type IN ('table', 'trigger')`
		rows, err := baseQuery(ctx, c.base, q)
		if err != nil {
			return cat
		}
		for _, row := range rows {
			typ, name, tbl := asString(row[0]), asString(row[1]), asString(row[2])
			text := strings.ToUpper(asString(row[3]))
			folded := strings.ToLower(tbl)
			if typ == "trigger" {
				if s != "main" {
					cat.extTriggers[folded] = true
				}
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(text), "CREATE VIRTUAL") {
				cat.virtual = true
				continue
			}
			if strings.Contains(text, "REPLACE") {
				cat.replacing[folded] = true
			}
			if s != "main" {
				extTables[folded] = true
				extWithoutRowid = extWithoutRowid || strings.Contains(text, "WITHOUT ROWID")
			}
			pk := tm.pk[strings.ToLower(name)]
			if pk == nil {
				continue
			}
			ti, err := readTableInfo(ctx, c.base, s, name, pk, strings.Contains(text, "WITHOUT ROWID"))
			if err != nil {
				return cat
			}
			if ti != nil {
				ti.models = tm.models[ti.folded]
				ti.intKey = true
				for _, m := range ti.models {
					ti.intKey = ti.intKey && len(m.pk) == 1 && m.fields[m.pk[0]].typ == int64Type
				}
				if cat.tables[s] == nil {
					cat.tables[s] = map[string]*tableInfo{}
				}
				cat.tables[s][name] = ti
			}
		}
	}
	if extWithoutRowid {
		cat.extTables = extTables
	}
	cat.ok = true
	return cat
}

// readTableInfo reads where the mapped key columns pk of schema.table are,
// or nil if some is not a column of it.
func readTableInfo(ctx context.Context, bc driver.Conn, schema, table string, pk []string, withoutRowid bool) (*tableInfo, error) {
	cols, err := baseQuery(ctx, bc, "SELECT cid, name, type, pk FROM pragma_table_xinfo(?, ?)", table, schema)
	if err != nil {
		return nil, err
	}
	ti := &tableInfo{folded: strings.ToLower(table), cols: make([]int, len(pk))}
	var declPK []string
	intPK := false
	for i, want := range pk {
		ti.cols[i] = -1
		for _, col := range cols {
			if strings.EqualFold(asString(col[1]), want) {
				ti.cols[i] = int(asInt(col[0]))
			}
		}
		if ti.cols[i] < 0 {
			return nil, nil
		}
		ti.width = max(ti.width, ti.cols[i]+1)
	}
	for _, col := range cols {
		if asInt(col[3]) > 0 {
			declPK = append(declPK, asString(col[1]))
			intPK = strings.EqualFold(strings.TrimSpace(asString(col[2])), "INTEGER")
		}
	}
	if !withoutRowid && len(pk) == 1 && len(declPK) == 1 && intPK && strings.EqualFold(declPK[0], pk[0]) {
		// An INTEGER PRIMARY KEY is the rowid, unless declared DESC (an
		// old quirk: then it has an index of its own).
		idx, err := baseQuery(ctx, bc, "SELECT 1 FROM pragma_index_list(?, ?) WHERE origin = 'pk'", table, schema)
		if err != nil {
			return nil, err
		}
		ti.rowid = len(idx) == 0
	}
	return ti, nil
}

// asInt reads an integer of a pragma's result as the SQLite drivers return
// it; anything else is -1, which no column index or pk position is.
func asInt(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	}
	return -1
}
