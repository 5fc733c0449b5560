package idmap

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/signals"
)

// InstanceID returns this process's instance id: the origin of the
// messages it publishes, by which it recognises (and ignores) its own.
func InstanceID() string { return instanceID }

var instanceID = func() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("pid-%d", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}()

var busSeq atomic.Uint64 // sequence of this instance's messages

// loggers holds each database's logger (*cache.DB → *slog.Logger), for the
// code that knows only the cache.DB.
var loggers sync.Map

func loggerOf(d *cache.DB) *slog.Logger {
	if l, ok := loggers.Load(d); ok {
		return l.(*slog.Logger)
	}
	return nil
}

func logDebug(d *cache.DB, msg string, attrs ...any) {
	if l := loggerOf(d); l != nil {
		l.Debug(msg, append([]any{slog.String("db", d.Name())}, attrs...)...)
	}
}

func logWarn(d *cache.DB, msg string, attrs ...any) {
	if l := loggerOf(d); l != nil {
		l.Warn(msg, append([]any{slog.String("db", d.Name())}, attrs...)...)
	}
}

// subscription is idmap's subscription to one bus, for every database that
// uses it.
type subscription struct {
	b bus.Bus

	mu        sync.Mutex
	dbs       map[*cache.DB]int // protected by mu: the databases, with how many open *sql.DB use this bus for each
	listening bool              // protected by mu

	// For a bus that proves delivery (bus.Prover); zero otherwise.
	prover bus.Prover
	probes probes
	kick   chan struct{} // capacity 1: probe at once
	stop   chan struct{} // closed when no database follows the bus: ends the prober
}

var subscriptions struct {
	mu sync.Mutex
	m  map[bus.Bus]*subscription // protected by mu
}

// attach makes d receive b's messages. d is paused until b listens, and,
// for a bus that proves delivery, serves nothing until its first proof
// (the resumption counts as one).
func attach(b bus.Bus, d *cache.DB, lease time.Duration) error {
	subscriptions.mu.Lock()
	defer subscriptions.mu.Unlock()
	stateOf(d).setLease(lease)
	if a, ok := b.(bus.Attacher); ok {
		a.Attach(bus.Attachment{DB: d.Name(), Logger: loggerOf(d)})
	}
	s := subscriptions.m[b]
	if s == nil {
		s = &subscription{b: b, dbs: map[*cache.DB]int{}}
		if pr, ok := b.(bus.Prover); ok {
			s.prover = pr
			s.kick = make(chan struct{}, 1)
			s.stop = make(chan struct{})
		}
		if subscriptions.m == nil {
			subscriptions.m = make(map[bus.Bus]*subscription)
		}
		subscriptions.m[b] = s
		s.add(d)
		h := bus.Handler{Message: s.message, Gap: s.gap}
		if s.prover != nil {
			h.Probe = s.probe
		}
		if err := b.Subscribe(h); err != nil {
			delete(subscriptions.m, b)
			s.remove(d)
			return fmt.Errorf("idmap: WithBus: subscribing: %w", err)
		}
		if s.prover != nil {
			go s.runProber(s.prover, s.stop)
		}
		return nil
	}
	s.add(d)
	return nil
}

// detach undoes one attach of d to b: when the last *sql.DB of d that uses
// b closes, d no longer follows b (a pause of b's is lifted from d), and a
// bus that no database follows is forgotten, so that opening a database
// with it again subscribes again.
func detach(b bus.Bus, d *cache.DB) {
	subscriptions.mu.Lock()
	defer subscriptions.mu.Unlock()
	s := subscriptions.m[b]
	if s == nil {
		return
	}
	if s.remove(d) == 0 {
		delete(subscriptions.m, b)
		if s.stop != nil {
			close(s.stop)
		}
	}
}

func (s *subscription) add(d *cache.DB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dbs[d]++
	if s.dbs[d] > 1 {
		return
	}
	if !s.listening {
		d.Pause()
	}
	d.Bus.Listening.Store(s.listening)
	if s.prover != nil {
		stateOf(d).addProver(s)
		s.kickProber()
	}
}

// kickProber makes the prober probe at once.
func (s *subscription) kickProber() {
	if s.kick == nil {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// remove drops one use of d and returns how many databases remain.
func (s *subscription) remove(d *cache.DB) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dbs[d] == 0 {
		return len(s.dbs)
	}
	s.dbs[d]--
	if s.dbs[d] == 0 {
		delete(s.dbs, d)
		if !s.listening {
			d.Resume()
		}
		d.Bus.Listening.Store(false)
		st := stateOf(d)
		st.removeProver(s)
		st.notify()
	}
	return len(s.dbs)
}

func (s *subscription) has(d *cache.DB) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dbs[d] > 0
}

// databases returns the databases that follow the bus.
func (s *subscription) databases() []*cache.DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	dbs := make([]*cache.DB, 0, len(s.dbs))
	for d := range s.dbs {
		dbs = append(dbs, d)
	}
	return dbs
}

// gap follows the state of the subscription: lost, every database pauses
// and is flushed; listening again, each is flushed once more and resumes
// (for a bus that proves delivery, its maps serve again at the next proof).
// The flushes (and their signals) run outside the subscription's lock.
func (s *subscription) gap(g bus.Gap) {
	s.mu.Lock()
	if g.Resumed == s.listening {
		s.mu.Unlock()
		return
	}
	s.listening = g.Resumed
	dbs := make([]*cache.DB, 0, len(s.dbs))
	for d := range s.dbs {
		d.Bus.Listening.Store(g.Resumed)
		dbs = append(dbs, d)
	}
	s.mu.Unlock()
	if s.prover != nil {
		// A probe sent before the gap proves nothing about the
		// subscription after it.
		s.probes.invalidate()
	}
	for _, d := range dbs {
		st := stateOf(d)
		if g.Resumed {
			// What was loaded while deaf may have missed a write.
			at := cache.Mono()
			flushDB(d, "", signals.BusGap)
			d.Resume()
			st.notify()
			signals.Bus.Send(signals.BusEvent{DB: d.Name(), Kind: signals.BusListening})
			logDebug(d, "idmap: bus listening; serving again")
			if s.prover != nil {
				// The resumption is a proof as of the flush: a write
				// committed before it is read by every later load, and
				// the messages of later writes come through the
				// subscription, which listens.
				st.proved(s, at)
			}
			continue
		}
		d.Bus.Gaps.Add(1)
		if errors.Is(g.Err, bus.ErrClosed) {
			st.closed.Add(1)
		} else {
			st.lost.Add(1)
		}
		d.Pause() // from now on nothing is served, nor stored in the shared maps
		st.lostProofs(s)
		flushDB(d, "", signals.BusGap)
		signals.Bus.Send(signals.BusEvent{DB: d.Name(), Kind: signals.BusLost, Err: g.Err})
		logWarn(d, "idmap: bus subscription lost; serving nothing until it is back", slog.Any("error", g.Err))
	}
	if g.Resumed {
		s.kickProber()
	}
}

// message applies another instance's message.
func (s *subscription) message(m bus.Message) {
	if m.Origin == instanceID {
		return
	}
	d := lookupMaps(m.DB)
	if d == nil || !s.has(d) {
		return
	}
	var keys []any
	if m.Table != "" && len(m.Keys) > 0 && sameKeyColumns(m.Table, m.Columns) {
		keys = make([]any, 0, len(m.Keys))
		for _, k := range m.Keys {
			nk, ok := keyFromWire(k)
			if !ok {
				keys = nil // widen to the table
				break
			}
			keys = append(keys, nk)
		}
	}
	d.ExpireRemote(m.Table, keys)
	d.Bus.Received.Add(1)
	stateOf(d).receivedKeys.Add(uint64(len(m.Keys)))
	logDebug(d, "idmap: remote invalidation", slog.String("origin", m.Origin), slog.Uint64("seq", m.Seq),
		slog.String("table", m.Table), slog.Int("keys", len(keys)))
}

// sameKeyColumns reports whether keys given as values of cols can expire
// this process's objects of table one by one: its mapped types key the
// table by the same columns, or no mapped type is on it (nothing of it is
// held, and what is loaded later is newer than the message).
func sameKeyColumns(table string, cols []string) bool {
	tm := currentTables()
	t := strings.ToLower(table)
	if len(tm.models[t]) == 0 {
		return true
	}
	pk := tm.pk[t]
	if pk == nil || len(pk) != len(cols) {
		return false
	}
	for i := range pk {
		if !strings.EqualFold(pk[i], cols[i]) {
			return false
		}
	}
	return true
}

// keyFromWire turns a key of a message into idmap's normalised form.
func keyFromWire(k any) (any, bool) {
	switch x := k.(type) {
	case int64, uint64, float64:
		return normKey(x), true
	case string:
		return normString(x), true
	case []any:
		if len(x) == 0 || len(x) > maxKeyParts {
			return nil, false
		}
		var ck compositeKey
		for i, p := range x {
			np, ok := keyFromWire(p)
			if !ok {
				return nil, false
			}
			if _, nested := np.(compositeKey); nested {
				return nil, false
			}
			ck[i] = np
		}
		return ck, true
	}
	return nil, false
}

// keyToWire turns a normalised key into a message's form; ok is false for a
// key a message cannot carry (the message then names the table).
func keyToWire(k any) (any, bool) {
	switch x := k.(type) {
	case int64, uint64, float64, string:
		return x, true
	case compositeKey:
		n := len(x)
		for n > 0 && x[n-1] == nil {
			n--
		}
		parts := make([]any, n)
		for i := range n {
			p, ok := keyToWire(x[i])
			if !ok || x[i] == nil {
				return nil, false
			}
			if _, nested := p.([]any); nested {
				return nil, false
			}
			parts[i] = p
		}
		return parts, n > 0
	}
	return nil, false
}

// maxTablesPerMessage bounds the messages of one transaction: past it, one
// message names the whole database.
const maxTablesPerMessage = 64

// messagesOf returns the messages that publish writes: one per table, or
// one for the whole database.
func (db *database) messagesOf(effs []*effects, all bool) []bus.Message {
	type tableMsg struct {
		whole bool
		keys  []any
		seen  map[any]bool
	}
	tables := map[string]*tableMsg{}
	get := func(t string) *tableMsg {
		tm := tables[t]
		if tm == nil {
			tm = &tableMsg{seen: map[any]bool{}}
			tables[t] = tm
		}
		return tm
	}
	for _, e := range effs {
		if all || e.all {
			all = true
			break
		}
		for _, t := range e.tables {
			get(t).whole = true
		}
		for _, list := range [][]tableKeys{e.keys, e.removes} {
			for _, tk := range list {
				tm := get(tk.table)
				if tm.whole {
					continue
				}
				for _, k := range tk.keys {
					wk, ok := keyToWire(k)
					if !ok {
						tm.whole = true
						break
					}
					if tm.seen[k] { // keyToWire took it: a comparable key
						continue
					}
					tm.seen[k] = true
					tm.keys = append(tm.keys, wk)
				}
				if len(tm.keys) > bus.MaxKeys {
					tm.whole = true
				}
			}
		}
	}
	if !all && len(tables) == 0 {
		return nil
	}
	if all || len(tables) > maxTablesPerMessage {
		return []bus.Message{db.message("", nil)}
	}
	names := make([]string, 0, len(tables))
	for t := range tables {
		names = append(names, t)
	}
	slices.Sort(names)
	msgs := make([]bus.Message, 0, len(names))
	for _, t := range names {
		tm := tables[t]
		keys := tm.keys
		if tm.whole {
			keys = nil
		}
		msg := db.message(t, keys)
		if keys != nil {
			msg.Columns = db.pkOf(t)
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

func (db *database) message(table string, keys []any) bus.Message {
	return bus.Message{Origin: instanceID, Seq: busSeq.Add(1), DB: db.name, Table: table, Keys: keys}
}

// publishNow publishes writes that have committed: from the connection
// itself for a ConnPublisher (this runs on the connection, between
// statements), else through Publish.
func (c *connState) publishNow(ctx context.Context, effs []*effects, all bool) {
	c.syncSources(ctx, effs, all)
	db := c.db
	if db.bus == nil {
		return
	}
	msgs := db.messagesOf(effs, all)
	if len(msgs) == 0 {
		return
	}
	if cp, ok := db.bus.(bus.ConnPublisher); ok {
		if err := c.execPublish(ctx, cp, msgs); err == nil {
			db.published(msgs)
			return
		} else {
			logWarn(db.cdb, "idmap: publishing from the connection failed; publishing through the bus", slog.Any("error", err))
		}
	}
	if err := db.bus.Publish(ctx, msgs); err != nil {
		db.cdb.Bus.Errors.Add(1)
		logWarn(db.cdb, "idmap: publishing invalidations failed", slog.Any("error", err), slog.Int("messages", len(msgs)))
		return
	}
	db.published(msgs)
}

func (db *database) published(msgs []bus.Message) {
	db.cdb.Bus.Published.Add(uint64(len(msgs)))
	n := 0
	for _, m := range msgs {
		n += len(m.Keys)
	}
	stateOf(db.cdb).publishedKeys.Add(uint64(n))
	for _, m := range msgs {
		logDebug(db.cdb, "idmap: published invalidation", slog.Uint64("seq", m.Seq), slog.String("table", m.Table), slog.Int("keys", len(m.Keys)))
	}
}

// publishBeforeCommit publishes what the open transaction wrote from its own
// connection, when the bus is a ConnPublisher: the messages commit with it.
// It reports whether it did.
func (c *connState) publishBeforeCommit(ctx context.Context) (bool, error) {
	t := c.tx
	if c.db.bus == nil || t == nil {
		return false, nil
	}
	cp, ok := c.db.bus.(bus.ConnPublisher)
	if !ok {
		return false, nil
	}
	msgs := c.db.messagesOf(t.pending, t.tooMany)
	if len(msgs) == 0 {
		return true, nil
	}
	if err := c.execPublish(ctx, cp, msgs); err != nil {
		c.db.cdb.Bus.Errors.Add(1)
		return false, err
	}
	c.db.published(msgs)
	return true, nil
}

// execPublish runs cp's statement for msgs on the base connection.
func (c *connState) execPublish(ctx context.Context, cp bus.ConnPublisher, msgs []bus.Message) error {
	query, args := cp.Statement(msgs)
	return c.execBase(ctx, query, args)
}

// execBase runs a statement of idmap's own on the base connection, unseen
// by the statement reader.
func (c *connState) execBase(ctx context.Context, query string, args []any) error {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	if ex, ok := c.base.(driver.ExecerContext); ok {
		_, err := ex.ExecContext(ctx, query, nv)
		if !errors.Is(err, driver.ErrSkip) {
			return err
		}
	}
	var st driver.Stmt
	var err error
	if pc, ok := c.base.(driver.ConnPrepareContext); ok {
		st, err = pc.PrepareContext(ctx, query)
	} else {
		st, err = c.base.Prepare(query)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	if se, ok := st.(driver.StmtExecContext); ok {
		_, err = se.ExecContext(ctx, nv)
		return err
	}
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		vals[i] = a
	}
	//lint:ignore SA1019 the base has no StmtExecContext: its Exec is all there is
	_, err = st.Exec(vals)
	return err
}

// logEffects logs, at level Debug, what a local write expired.
func (db *database) logEffects(e *effects) {
	l := loggerOf(db.cdb)
	if l == nil || e == nil || !l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if e.all {
		logDebug(db.cdb, "idmap: write expires the whole database")
		return
	}
	for _, t := range e.tables {
		logDebug(db.cdb, "idmap: write expires a table", slog.String("table", t))
	}
	for _, tk := range e.keys {
		logDebug(db.cdb, "idmap: write expires keys", slog.String("table", tk.table), slog.Int("keys", len(tk.keys)))
	}
}
