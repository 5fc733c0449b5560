package idmap

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-idmap/idmap/bus"
)

// changeLogTable and changeLogMeta are the log's tables; changeLogTrigger
// begins the names of the triggers idmap installs (a reserved prefix: the
// statement reader does not count these triggers as unbounded effects).
const (
	changeLogTable   = "idmap_changelog"
	changeLogMeta    = "idmap_changelog_meta"
	changeLogTrigger = "idmap_cl_"
)

// ErrChangeLogPruned is reported in the Gap of a change log whose cursor
// fell behind the rows its pruning deleted.
var ErrChangeLogPruned = errors.New("idmap: change log: pruned past the reader's cursor")

// errHoleTimeout is reported in the Gap of a change log that gave up on a
// sequence number that stayed missing longer than HoleTimeout.
var errHoleTimeout = errors.New("idmap: change log: a sequence number stayed missing longer than the hole timeout")

// maxHoles bounds the holes a reader keeps; past it, a gap.
const maxHoles = 4096

// clDialect finds the dialect of db by asking the server.
func clDialect(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (dialect, error) {
	var v string
	if err := q.QueryRowContext(ctx, `SELECT sqlite_version()`).Scan(&v); err == nil {
		return dialectSQLite, nil
	}
	if err := q.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&v); err == nil && !strings.Contains(strings.ToLower(v), "postgres") {
		return dialectMySQL, nil
	}
	return dialectGeneric, errors.New("idmap: change log: only SQLite, MySQL and MariaDB are supported (PostgreSQL has package bus/pgfeed)")
}

// InstallChangeLog creates the change log's tables (idmap_changelog,
// idmap_changelog_meta) if they are missing, and installs on each table
// three triggers (AFTER INSERT, UPDATE, DELETE, named idmap_cl_…) that
// append the keys the write changed: the key on INSERT and DELETE, the old
// and the new key on UPDATE. Run it at migration time, after creating the
// tables: it is idempotent (a trigger already as it should be is kept, one
// that differs is replaced), and run again after changing a table's
// primary key. Table names are "table" or, on MySQL, "database.table",
// bare or quoted (see Table); a name holding a quote or a backslash is
// refused. A table without a primary key, or whose key has a column of
// another type than integer or text, logs its writes as writes to the
// whole table. db is a plain pool of the base driver or one opened
// through idmap.
func InstallChangeLog(ctx context.Context, db *sql.DB, tables ...string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("idmap: InstallChangeLog: %w", err)
	}
	defer conn.Close()
	d, err := clDialect(ctx, conn)
	if err != nil {
		return err
	}
	logDB := ""
	var ddl []string
	if d == dialectMySQL {
		if err := conn.QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&logDB); err != nil || logDB == "" {
			return errors.New("idmap: InstallChangeLog: the connection has no current database")
		}
		ddl = []string{
			`CREATE TABLE IF NOT EXISTS ` + changeLogTable + ` (seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
				tbl VARCHAR(200) NOT NULL, cols VARCHAR(1000) NOT NULL, k TEXT NULL, k2 TEXT NULL,
				at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB`,
			`CREATE TABLE IF NOT EXISTS ` + changeLogMeta + ` (id INT NOT NULL PRIMARY KEY, pruned BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB`,
			`INSERT IGNORE INTO ` + changeLogMeta + ` VALUES (1, 0)`,
		}
	} else {
		ddl = []string{
			`CREATE TABLE IF NOT EXISTS ` + changeLogTable + ` (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, cols TEXT NOT NULL,
				k TEXT, k2 TEXT, at REAL NOT NULL DEFAULT (julianday('now')))`,
			`CREATE TABLE IF NOT EXISTS ` + changeLogMeta + ` (id INTEGER PRIMARY KEY, pruned INTEGER NOT NULL)`,
			`INSERT OR IGNORE INTO ` + changeLogMeta + ` VALUES (1, 0)`,
		}
	}
	for _, q := range ddl {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("idmap: InstallChangeLog: creating the log: %w", err)
		}
	}
	for _, t := range tables {
		if err := installTriggers(ctx, conn, d, logDB, t); err != nil {
			return err
		}
	}
	return nil
}

// clLiteral quotes s as an SQL string literal; s holds no quote nor
// backslash (checked by the caller), so that the literal reads the same
// under every sql_mode.
func clLiteral(s string) string { return "'" + s + "'" }

func clSafe(s string) bool { return !strings.ContainsAny(s, "'\\\"") && !strings.ContainsRune(s, 0) }

// installTriggers installs the three triggers of one table.
func installTriggers(ctx context.Context, conn *sql.Conn, d dialect, logDB, table string) error {
	maxParts := 1
	if d == dialectMySQL {
		maxParts = 2
	}
	parts, why := parseName(table, maxParts)
	if why != "" {
		return fmt.Errorf("idmap: InstallChangeLog: table %.80q: %s", table, why)
	}
	for _, p := range parts {
		if !clSafe(p) {
			return fmt.Errorf("idmap: InstallChangeLog: table %.80q: a name holding a quote or a backslash is not supported", table)
		}
	}
	schema, name := "", parts[len(parts)-1]
	if len(parts) == 2 {
		schema = parts[0]
	}
	// The key columns and whether each has a type a message can carry.
	var cols []string
	carry := true
	var rows *sql.Rows
	var err error
	if d == dialectMySQL {
		if schema == "" {
			schema = logDB
		}
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, name).Scan(&n); err != nil {
			return fmt.Errorf("idmap: InstallChangeLog: %w", err)
		} else if n == 0 {
			return fmt.Errorf("idmap: InstallChangeLog: no table %.80q", table)
		}
		rows, err = conn.QueryContext(ctx, `SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k
			JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME
			WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION`, schema, name)
	} else {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
			return fmt.Errorf("idmap: InstallChangeLog: %w", err)
		} else if n == 0 {
			return fmt.Errorf("idmap: InstallChangeLog: no table %.80q", table)
		}
		rows, err = conn.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, name)
	}
	if err != nil {
		return fmt.Errorf("idmap: InstallChangeLog: reading the key of %.80q: %w", table, err)
	}
	for rows.Next() {
		var c, typ string
		if err := rows.Scan(&c, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("idmap: InstallChangeLog: %w", err)
		}
		cols = append(cols, c)
		if !clSafe(c) || !clKeyType(d, typ) {
			carry = false
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("idmap: InstallChangeLog: %w", err)
	}
	if len(cols) == 0 {
		carry = false
	}
	colsJSON := "[]"
	if carry {
		b, _ := json.Marshal(lowerAll(cols))
		colsJSON = string(b)
	}
	msgTable := strings.ToLower(strings.Join(parts, "."))
	var tq, logq strings.Builder
	d.quoteName(&tq, parts...)
	if d == dialectMySQL {
		d.quoteName(&logq, logDB, changeLogTable)
	} else {
		logq.WriteString(changeLogTable)
	}
	key := func(row string) string {
		if !carry {
			return "NULL"
		}
		var b strings.Builder
		// array writes fn(row.c1, row.c2, …).
		array := func(fn string) {
			b.WriteString(fn + "(")
			for i, c := range cols {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(row + ".")
				d.quoteName(&b, c)
			}
			b.WriteString(")")
		}
		if d == dialectMySQL {
			array("JSON_ARRAY")
			return b.String()
		}
		// SQLite: a BLOB in a key column would make json_array fail the
		// writer's statement; such a row names its whole table.
		b.WriteString("CASE WHEN ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString("typeof(" + row + ".")
			d.quoteName(&b, c)
			b.WriteString(") IN ('integer', 'text', 'real')")
		}
		b.WriteString(" THEN ")
		array("json_array")
		b.WriteString(" END")
		return b.String()
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(strings.Join(parts, "\x00"))))
	base := changeLogTrigger + hex.EncodeToString(h.Sum(nil))
	// MySQL runs no trigger for the rows a foreign key's action changes
	// (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT): the parent's
	// UPDATE and DELETE also log every table those actions reach, whole.
	var reachU, reachD []string
	if d == dialectMySQL {
		var err error
		if reachU, reachD, err = mysqlCascades(ctx, conn, schema, name, logDB); err != nil {
			return fmt.Errorf("idmap: InstallChangeLog: table %.80q: reading its foreign keys: %w", table, err)
		}
	}
	whole := func(ts []string) string {
		var b strings.Builder
		for _, t := range ts {
			b.WriteString(", (" + clLiteral(t) + ", '[]', NULL, NULL)")
		}
		return b.String()
	}
	for _, ev := range []struct{ suffix, event, k, k2, more string }{
		{"_i", "INSERT", key("NEW"), "NULL", ""},
		{"_u", "UPDATE", key("OLD"), key("NEW"), whole(reachU)},
		{"_d", "DELETE", key("OLD"), "NULL", whole(reachD)},
	} {
		trig := base + ev.suffix
		body := "INSERT INTO " + logq.String() + " (tbl, cols, k, k2) VALUES (" + clLiteral(msgTable) + ", " + clLiteral(colsJSON) + ", " + ev.k + ", " + ev.k2 + ")" + ev.more
		if err := installTrigger(ctx, conn, d, schema, trig, ev.event, tq.String(), body); err != nil {
			return fmt.Errorf("idmap: InstallChangeLog: table %.80q: %w", table, err)
		}
	}
	return nil
}

// mysqlCascades returns the tables that the foreign-key actions of
// schema.name's UPDATEs and DELETEs change, transitively (a cascade's
// rows run no trigger, and cascade further), as messages name them: bare
// in the log's database, qualified elsewhere.
func mysqlCascades(ctx context.Context, conn *sql.Conn, schema, name, logDB string) (upd, del []string, err error) {
	rows, err := conn.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE
		FROM information_schema.REFERENTIAL_CONSTRAINTS`)
	if err != nil {
		return nil, nil, err
	}
	type edge struct {
		child    [2]string
		upd, del bool
	}
	kids := map[[2]string][]edge{}
	for rows.Next() {
		var cs, ct, ps, pt, ur, dr string
		if err := rows.Scan(&cs, &ct, &ps, &pt, &ur, &dr); err != nil {
			rows.Close()
			return nil, nil, err
		}
		acts := func(r string) bool { r = strings.ToUpper(r); return r != "RESTRICT" && r != "NO ACTION" }
		p := [2]string{strings.ToLower(ps), strings.ToLower(pt)}
		kids[p] = append(kids[p], edge{[2]string{strings.ToLower(cs), strings.ToLower(ct)}, acts(ur), acts(dr)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	label := func(t [2]string) string {
		if t[0] == strings.ToLower(logDB) {
			return t[1]
		}
		return t[0] + "." + t[1]
	}
	// reach: a first step by the parent's own action, then every action
	// of the rows reached (an update SET NULL of a child is an update of
	// it; a cascaded delete deletes).
	bad := ""
	reach := func(first func(edge) bool) []string {
		seen := map[[2]string]bool{}
		var out []string
		start := [2]string{strings.ToLower(schema), strings.ToLower(name)}
		queue := [][2]string{}
		for _, e := range kids[start] {
			if first(e) && !seen[e.child] {
				seen[e.child] = true
				queue = append(queue, e.child)
			}
		}
		for len(queue) > 0 {
			t := queue[0]
			queue = queue[1:]
			if !clSafe(t[0]) || !clSafe(t[1]) {
				bad = label(t)
				continue
			}
			out = append(out, label(t))
			for _, e := range kids[t] {
				if (e.upd || e.del) && !seen[e.child] {
					seen[e.child] = true
					queue = append(queue, e.child)
				}
			}
		}
		return out
	}
	upd = reach(func(e edge) bool { return e.upd })
	del = reach(func(e edge) bool { return e.del })
	if bad != "" {
		return nil, nil, fmt.Errorf("a foreign key's action reaches %.80q, whose name holds a quote or a backslash", bad)
	}
	return upd, del, nil
}

func lowerAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.ToLower(x)
	}
	return out
}

// clKeyType reports whether a key column of type typ gives keys that a
// message carries as idmap normalises them: integers and text.
func clKeyType(d dialect, typ string) bool {
	t := strings.ToLower(typ)
	if d == dialectMySQL {
		switch t {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
			return true
		}
		return false
	}
	// SQLite affinity (section 3.1 of its datatype page): INTEGER and TEXT.
	return strings.Contains(t, "int") || strings.Contains(t, "char") || strings.Contains(t, "clob") || strings.Contains(t, "text")
}

// installTrigger creates trigger trig unless it exists with this body.
func installTrigger(ctx context.Context, conn *sql.Conn, d dialect, schema, trig, event, table, body string) error {
	var tn strings.Builder
	if d == dialectMySQL {
		d.quoteName(&tn, schema, trig)
		var stmt string
		err := conn.QueryRowContext(ctx, `SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?`, schema, trig).Scan(&stmt)
		if err == nil && strings.TrimSpace(stmt) == body {
			return nil
		}
		if err == nil {
			if _, err := conn.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+tn.String()); err != nil {
				return err
			}
		}
		_, err = conn.ExecContext(ctx, `CREATE TRIGGER `+tn.String()+` AFTER `+event+` ON `+table+` FOR EACH ROW `+body)
		return err
	}
	d.quoteName(&tn, trig)
	create := `CREATE TRIGGER ` + tn.String() + ` AFTER ` + event + ` ON ` + table + ` FOR EACH ROW BEGIN ` + body + `; END`
	var have string
	err := conn.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?`, trig).Scan(&have)
	if err == nil && have == create {
		return nil
	}
	// SQLite's DDL is transactional: the trigger is replaced atomically.
	tx, terr := conn.BeginTx(ctx, nil)
	if terr != nil {
		return terr
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+tn.String()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return err
	}
	return tx.Commit()
}

// A ChangeLog reads the change log that InstallChangeLog set up and
// delivers its rows as invalidations: give it to WithSource. It is a
// bus.Bus that only subscribes, a bus.Syncer (a commit through idmap whose
// effects the statement reader cannot bound returns once the log has been
// read up to its end) and a bus.Prover (a probe comes back after the next
// complete read, so that a reader that stalls stops the maps from serving
// after the lease).
//
// The change log is for engines without a change feed (MySQL, MariaDB, and
// SQLite files shared by several processes): triggers that idmap installs
// on the mapped tables append the keys each write changed to a small
// table, idmap_changelog, in the writer's own transaction; a ChangeLog
// reads that table incrementally and delivers what it finds as a source
// (WithSource), so that writes by other programs expire too.
type ChangeLog struct {
	db          *sql.DB
	name        string
	interval    time.Duration
	retention   time.Duration
	holeTimeout time.Duration
	syncTimeout time.Duration
	logger      *slog.Logger
	origin      string

	mu        sync.Mutex
	handlers  []*clHandler
	started   bool
	closed    bool
	listening bool
	probes    []uint64      // sent, not yet proven
	polled    chan struct{} // closed when the next complete read ends
	kick      chan struct{}
	done      chan struct{}
	ended     chan struct{}

	seq uint64 // messages delivered; poller goroutine only
}

type clHandler struct {
	h    bus.Handler
	told bool // has been told that the reader listens
}

// NewChangeLog returns a reader of the change log in db (a plain pool of
// the base driver, or one opened through idmap) whose messages name the
// idmap database name (the Name it is opened with). Reading starts at
// Subscribe.
func NewChangeLog(db *sql.DB, name string, opts ...ChangeLogOption) (*ChangeLog, error) {
	if db == nil {
		return nil, errors.New("idmap: NewChangeLog: nil *sql.DB")
	}
	if name == "" {
		return nil, errors.New("idmap: NewChangeLog: empty database name")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	c := &ChangeLog{db: db, name: name, interval: 50 * time.Millisecond, holeTimeout: 30 * time.Second,
		syncTimeout: 5 * time.Second, origin: "changelog-" + hex.EncodeToString(b[:]),
		polled: make(chan struct{}), kick: make(chan struct{}, 1), done: make(chan struct{}), ended: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Publish does nothing: the change log is written by the triggers.
func (c *ChangeLog) Publish(context.Context, []bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return bus.ErrClosed
	}
	return nil
}

// Subscribe adds a subscriber and, at the first call, starts reading.
// The reader reports Gap{Resumed: true} once it has settled (see "Start
// and gaps" under the change log in docs/sources.md), then one Message per
// table and read with the keys it found; a failed read reports
// Gap{Err}, and the next good one Gap{Resumed: true}.
func (c *ChangeLog) Subscribe(h bus.Handler) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return bus.ErrClosed
	}
	c.handlers = append(c.handlers, &clHandler{h: h})
	if !c.started {
		c.started = true
		go c.run()
	}
	c.poke()
	return nil
}

// Close stops the reader; a subscriber that was listening receives a last
// gap (bus.ErrClosed).
func (c *ChangeLog) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	close(c.done)
	c.mu.Unlock()
	if started {
		<-c.ended
	}
	return nil
}

func (c *ChangeLog) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Probe asks for token to come back after the next complete read.
func (c *ChangeLog) Probe(ctx context.Context, token uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return bus.ErrClosed
	}
	c.probes = append(c.probes, token)
	c.poke()
	return nil
}

// SyncStatement returns a statement with no effect and a wait that ends
// after a complete read of the log that began after the wait was called
// (so after the commit it follows), or with an error past the sync
// timeout. While the reader does not listen, and its subscribers have
// been told so, there is nothing to wait for: the database serves nothing
// until it listens again, and is flushed then.
func (c *ChangeLog) SyncStatement() (string, []any, func(context.Context) error) {
	return "SELECT 1", nil, func(ctx context.Context) error {
		c.mu.Lock()
		if !c.listening {
			c.mu.Unlock()
			return nil
		}
		// c.polled is the channel of the next read to begin: the read in
		// progress, if any, took its own.
		next := c.polled
		c.poke()
		c.mu.Unlock()
		t := time.NewTimer(c.syncTimeout)
		defer t.Stop()
		select {
		case <-next:
			// A failed read reported a gap first: the database is
			// flushed and paused.
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return errors.New("idmap: change log: the reader did not confirm a commit within the sync timeout")
		case <-c.done:
			return bus.ErrClosed
		}
	}
}

// Prune deletes the rows of the log older than olderThan (by the
// server's clock; never the newest row) and records how far it pruned, so
// that a reader behind that point reports a gap. It returns how many rows
// it deleted.
func (c *ChangeLog) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("idmap: change log: prune: %w", err)
	}
	defer conn.Close()
	d, err := clDialect(ctx, conn)
	if err != nil {
		return 0, err
	}
	var p sql.NullInt64
	if d == dialectMySQL {
		err = conn.QueryRowContext(ctx, `SELECT MAX(seq) FROM `+changeLogTable+` WHERE at < NOW(6) - INTERVAL ? MICROSECOND
			AND seq < (SELECT MAX(seq) FROM `+changeLogTable+`)`, olderThan.Microseconds()).Scan(&p)
	} else {
		err = conn.QueryRowContext(ctx, `SELECT MAX(seq) FROM `+changeLogTable+` WHERE at < julianday('now') - ?
			AND seq < (SELECT MAX(seq) FROM `+changeLogTable+`)`, olderThan.Seconds()/86400).Scan(&p)
	}
	if err != nil {
		return 0, fmt.Errorf("idmap: change log: prune: %w", err)
	}
	if !p.Valid {
		return 0, nil
	}
	// The mark first: a reader that sees the rows gone sees the mark too.
	if _, err := conn.ExecContext(ctx, `UPDATE `+changeLogMeta+` SET pruned = ? WHERE id = 1 AND pruned < ?`, p.Int64, p.Int64); err != nil {
		return 0, fmt.Errorf("idmap: change log: prune: %w", err)
	}
	res, err := conn.ExecContext(ctx, `DELETE FROM `+changeLogTable+` WHERE seq <= ?`, p.Int64)
	if err != nil {
		return 0, fmt.Errorf("idmap: change log: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// clState is the reader's cursor; the poller goroutine's only.
//
// Sequence numbers (AUTO_INCREMENT, rowid) are taken before
// commit: on MySQL a row with a smaller number can commit after a larger
// one has been read, and a plain "seq > cursor" read would skip it. The
// reader keeps, below its high-water mark, the set of numbers it has not
// seen (holes) and reads them again at every poll, until they fill (the
// writer committed) or are proven empty: the row that holds a number is
// locked by its transaction until it ends, so a hole older than
// insertMargin that a locking read which does not wait (FOR UPDATE
// NOWAIT) finds neither locked nor present was rolled back. A hole that
// stays open longer than HoleTimeout (a very long transaction), or more
// than maxHoles of them, is a gap: the database is flushed and serves
// nothing until the reader has settled again. On SQLite, writers are
// serialised and a number is taken under the write lock: numbers commit
// in order and no hole can fill later.
//
// A start (and a restart after a gap) takes the log's current end as its
// cursor; on MySQL the reader reports that it listens only once no row
// up to that end is locked (every transaction writing one has ended), so
// that the flush at the resumption covers whatever they committed below
// the cursor.
type clState struct {
	d         dialect
	conn      *sql.Conn
	hw        int64               // every number up to hw is read or a hole
	holeAt    map[int64]time.Time // missing numbers (holes) → when they were found missing
	settle    time.Time           // MySQL: listen once every transaction open at this server time has ended
	settled   bool
	version   int64
	fresh     bool // data_version not read yet
	lastPrune time.Time
}

func (c *ChangeLog) run() {
	defer close(c.ended)
	st := &clState{holeAt: map[int64]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-c.done:
		case <-c.ended:
		}
		cancel()
	}()
	backoff := c.interval
	tick := time.NewTimer(0)
	defer tick.Stop()
	var reset bool = true
	for {
		select {
		case <-c.done:
			c.finish(st)
			return
		case <-tick.C:
		case <-c.kick:
		}
		c.mu.Lock()
		probes := c.probes
		c.probes = nil
		polled := c.polled
		c.polled = make(chan struct{})
		c.mu.Unlock()
		err := c.read(ctx, st, reset)
		if err == nil {
			reset = false
		}
		if ctx.Err() != nil {
			close(polled)
			c.finish(st)
			return
		}
		var gapErr error
		switch {
		case errors.Is(err, ErrChangeLogPruned), errors.Is(err, errHoleTimeout):
			gapErr, reset = err, true
		case err != nil:
			gapErr = err
			if st.conn != nil {
				st.conn.Close()
				st.conn = nil
			}
		}
		if gapErr != nil {
			c.lose(gapErr)
			close(polled)
			if reset {
				// Start again at the log's end at once.
				backoff = c.interval
				tick.Reset(0)
			} else {
				backoff = min(backoff*2, 5*time.Second)
				tick.Reset(backoff)
			}
			// Probes sent before a loss prove nothing after it.
			continue
		}
		backoff = c.interval
		c.mu.Lock()
		listening := st.settled
		if listening {
			c.listening = true
		}
		hs := append([]*clHandler(nil), c.handlers...)
		c.mu.Unlock()
		if listening {
			for _, h := range hs {
				if !h.told {
					h.told = true
					if h.h.Gap != nil {
						h.h.Gap(bus.Gap{Resumed: true})
					}
				}
			}
			for _, tok := range probes {
				for _, h := range hs {
					if h.h.Probe != nil {
						h.h.Probe(tok)
					}
				}
			}
		}
		close(polled)
		if c.retention > 0 {
			every := max(c.retention/10, time.Second)
			if time.Since(st.lastPrune) >= every {
				st.lastPrune = time.Now()
				if _, err := c.Prune(ctx, c.retention); err != nil && c.logger != nil {
					c.logger.Warn("idmap: change log: pruning failed", slog.Any("error", err))
				}
			}
		}
		if !st.settled {
			// Settling (MySQL): look again soon.
			tick.Reset(min(c.interval, 20*time.Millisecond))
		} else {
			tick.Reset(c.interval)
		}
	}
}

// lose reports a gap to the subscribers that were told the reader listens.
func (c *ChangeLog) lose(err error) {
	c.mu.Lock()
	hs := append([]*clHandler(nil), c.handlers...)
	c.mu.Unlock()
	if c.logger != nil {
		c.logger.Warn("idmap: change log: reading lost", slog.Any("error", err))
	}
	for _, h := range hs {
		if h.told {
			h.told = false
			if h.h.Gap != nil {
				h.h.Gap(bus.Gap{Err: err})
			}
		}
	}
	c.deaf()
}

func (c *ChangeLog) finish(st *clState) {
	if st.conn != nil {
		st.conn.Close()
	}
	c.mu.Lock()
	hs := append([]*clHandler(nil), c.handlers...)
	c.mu.Unlock()
	for _, h := range hs {
		if h.told && h.h.Gap != nil {
			h.h.Gap(bus.Gap{Err: bus.ErrClosed})
		}
	}
	c.deaf()
}

// deaf records that the reader does not listen, once its subscribers have
// been told (each database paused and flushed): from then on a commit's
// wait (SyncStatement) returns at once. Until then it waits for a read,
// as while the reader listens: a wait that returned while a subscriber was
// still being told would let a commit return while its database still
// served what the commit changed.
func (c *ChangeLog) deaf() {
	c.mu.Lock()
	c.listening = false
	c.mu.Unlock()
}

// read is one poll: it reads what is new (and the holes), delivers it, and
// settles the cursor. reset starts the cursor again at the log's end.
func (c *ChangeLog) read(ctx context.Context, st *clState, reset bool) error {
	if st.conn == nil {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			return err
		}
		d, err := clDialect(ctx, conn)
		if err != nil {
			conn.Close()
			return err
		}
		st.conn, st.d, st.fresh = conn, d, true
		if d == dialectMySQL {
			// No gap locks for the locking reads below.
			if _, err := conn.ExecContext(ctx, `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`); err != nil {
				conn.Close()
				st.conn = nil
				return err
			}
		}
	}
	conn := st.conn
	// SQLite: data_version changes when another connection commits.
	if st.d == dialectSQLite && !reset {
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			return err
		}
		if !st.fresh && v == st.version && st.settled {
			return nil
		}
		st.version, st.fresh = v, false
	}
	if reset {
		var hw sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT MAX(seq) FROM `+changeLogTable).Scan(&hw); err != nil {
			return err
		}
		st.hw = hw.Int64
		st.fresh = true
		clear(st.holeAt)
		st.settled = st.d != dialectMySQL
		st.settle = time.Now()
		if !st.settled {
			return nil
		}
	}
	// MySQL: settled once no row at or below the start's end is still
	// being written (locked by an open transaction).
	if !st.settled && time.Since(st.settle) > insertMargin {
		if clUnlocked(ctx, conn, `SELECT COUNT(*) FROM `+changeLogTable+` WHERE seq <= ? FOR UPDATE NOWAIT`, st.hw) {
			st.settled = true
		}
	}
	// Read what is new, and the holes, in batches.
	for {
		q := `SELECT seq, tbl, cols, k, k2 FROM ` + changeLogTable + ` WHERE seq > ?`
		args := []any{st.hw}
		if len(st.holeAt) > 0 {
			q += " OR seq IN (" + seqList(maps.Keys(st.holeAt)) + ")"
		}
		q += ` ORDER BY seq LIMIT 1000`
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		groups := map[string]*clGroup{}
		var order []string
		n := 0
		before := st.hw
		for rows.Next() {
			var seq int64
			var tbl, cols string
			var k, k2 sql.NullString
			if err := rows.Scan(&seq, &tbl, &cols, &k, &k2); err != nil {
				rows.Close()
				return err
			}
			n++
			if seq <= st.hw {
				if _, ok := st.holeAt[seq]; !ok {
					continue
				}
				delete(st.holeAt, seq)
			} else {
				if st.d == dialectMySQL {
					for s := st.hw + 1; s < seq; s++ {
						if len(st.holeAt) >= maxHoles {
							rows.Close()
							return errHoleTimeout
						}
						st.holeAt[s] = time.Now()
					}
				}
				st.hw = seq
			}
			g := groups[tbl]
			if g == nil {
				g = &clGroup{}
				groups[tbl] = g
				order = append(order, tbl)
				_ = json.Unmarshal([]byte(cols), &g.cols)
			}
			if g.whole {
				continue
			}
			if !k.Valid || len(g.cols) == 0 {
				g.whole = true
				continue
			}
			for _, kk := range []sql.NullString{k, k2} {
				if !kk.Valid {
					continue
				}
				key, ok := clKey(kk.String, len(g.cols))
				if !ok {
					g.whole = true
					break
				}
				g.keys = append(g.keys, key)
			}
			if len(g.keys) > bus.MaxKeys {
				g.whole = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The pruning mark, read after the rows: rows deleted before this
		// read are below it.
		var pruned int64
		if err := conn.QueryRowContext(ctx, `SELECT pruned FROM `+changeLogMeta+` WHERE id = 1`).Scan(&pruned); err != nil {
			return err
		}
		lost := pruned > before
		for s := range st.holeAt {
			if s <= pruned {
				lost = true
			}
		}
		c.deliver(groups, order)
		if lost {
			return ErrChangeLogPruned
		}
		if n < 1000 {
			break
		}
	}
	// Holes missing for longer than the insert margin, and whose rows no
	// open transaction holds (a locking read that does not wait finds no
	// row and no lock), are empty for good: their transaction rolled back.
	var old []int64
	for s, at := range st.holeAt {
		if time.Since(at) > insertMargin {
			old = append(old, s)
		}
	}
	if len(old) > 0 {
		in := seqList(slices.Values(old))
		if clUnlocked(ctx, conn, `SELECT COUNT(*) FROM `+changeLogTable+` WHERE seq IN (`+in+`) FOR UPDATE NOWAIT`) {
			// None locked; a row found committed since the read is read at
			// the next poll (its hole stays).
			var found int
			_ = conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+changeLogTable+` WHERE seq IN (`+in+`)`).Scan(&found)
			if found == 0 {
				for _, s := range old {
					delete(st.holeAt, s)
				}
			}
		}
	}
	for _, at := range st.holeAt {
		if time.Since(at) > c.holeTimeout {
			return errHoleTimeout
		}
	}
	return nil
}

// seqList writes sequence numbers as a comma-separated list.
func seqList(seqs iter.Seq[int64]) string {
	var b strings.Builder
	for s := range seqs {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s, 10))
	}
	return b.String()
}

// insertMargin bounds the time between the moment InnoDB hands out a
// sequence number and the moment the row that holds it is inserted (and
// locked): the same row operation of the trigger's INSERT.
const insertMargin = 250 * time.Millisecond

// clUnlocked runs a locking read that does not wait (FOR UPDATE NOWAIT,
// MySQL 8.0 / MariaDB 10.3 and later) and reports whether it succeeded:
// no row it reaches is held by an open transaction.
func clUnlocked(ctx context.Context, conn *sql.Conn, q string, args ...any) bool {
	var n int64
	return conn.QueryRowContext(ctx, q, args...).Scan(&n) == nil
}

// clKey decodes a key the triggers wrote: a JSON array of the key's
// column values.
func clKey(s string, n int) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var parts []any
	if err := dec.Decode(&parts); err != nil || len(parts) != n || n == 0 {
		return nil, false
	}
	for i, p := range parts {
		switch x := p.(type) {
		case json.Number:
			if v, err := x.Int64(); err == nil {
				parts[i] = v
			} else if v, err := strconv.ParseUint(string(x), 10, 64); err == nil {
				parts[i] = v
			} else if v, err := x.Float64(); err == nil {
				parts[i] = v
			} else {
				return nil, false
			}
		case string:
		default:
			return nil, false
		}
	}
	if n == 1 {
		return parts[0], true
	}
	return parts, true
}

// clGroup is what one read found for one table.
type clGroup struct {
	cols  []string
	keys  []any
	whole bool
}

// deliver hands one message per table to the subscribers that listen.
func (c *ChangeLog) deliver(groups map[string]*clGroup, order []string) {
	if len(order) == 0 {
		return
	}
	c.mu.Lock()
	hs := append([]*clHandler(nil), c.handlers...)
	c.mu.Unlock()
	for _, t := range order {
		g := groups[t]
		c.seq++
		m := bus.Message{Origin: c.origin, Seq: c.seq, DB: c.name, Table: t}
		if !g.whole {
			m.Keys, m.Columns = g.keys, g.cols
		}
		for _, h := range hs {
			if h.told && h.h.Message != nil {
				h.h.Message(m)
			}
		}
	}
}
