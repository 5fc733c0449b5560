package pgfeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/internal/busadapter"
)

// run is the subscription's goroutine: stream, and on failure report the
// gap, back off and stream again on a new slot.
func (f *Feed) run(ctx context.Context) {
	defer close(f.done)
	h := &subscribers{f: f}
	listening := false
	defer func() {
		if listening {
			h.gap(bus.Gap{Err: ErrClosed})
		}
		f.setState(false, "")
	}()
	backoff := f.o.minBackoff
	failures := 0
	for {
		err := f.stream(ctx, h, func() {
			listening = true
			backoff, failures = f.o.minBackoff, 0
		})
		if ctx.Err() != nil {
			return
		}
		if listening {
			// The subscriber pauses first; only then are waits released
			// (and new ones answered at once): whoever they release reads
			// nothing from the maps until the feed is back.
			listening = false
			h.gap(bus.Gap{Err: err})
			f.setState(false, "")
			f.releaseWaiters()
		}
		failures++
		if failures == 1 {
			f.log.Warn("pgfeed: change feed lost; reconnecting", "in", backoff, "err", err.Error())
		} else {
			f.log.Debug("pgfeed: change feed still down; reconnecting", "in", backoff, "failures", failures, "err", err.Error())
		}
		if !busadapter.Sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, f.o.maxBackoff)
	}
}

// change is what one transaction did to one table.
type change struct {
	whole bool
	keys  []any
	seen  map[string]bool
	cols  []string
}

// txn is the transaction being decoded.
type txn struct {
	xid    uint32
	tables map[string]*change
	whole  bool     // the whole database
	marks  []string // read-your-writes marks, delivered after the tables
	probes []uint64 // probes (Feed.Probe), delivered after the marks
}

func (t *txn) reset() {
	t.xid, t.tables, t.whole, t.marks, t.probes = 0, nil, false, t.marks[:0], t.probes[:0]
}

func (t *txn) table(name string) *change {
	if t.tables == nil {
		t.tables = map[string]*change{}
	}
	c := t.tables[name]
	if c == nil {
		c = &change{seen: map[string]bool{}}
		t.tables[name] = c
	}
	return c
}

// maxTables bounds the tables of one transaction's messages: past it, one
// message names the whole database.
const maxTables = 64

// stream streams on one connection and one temporary slot until it fails
// or ctx ends. listening is called once the slot streams.
func (f *Feed) stream(ctx context.Context, h *subscribers, listening func()) error {
	conn, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	// Tables created since the last connection join the publication. A
	// failure here (a table of Tables dropped since, a privilege revoked)
	// leaves the publication as it is: it exists already.
	if err := f.prepare(ctx, conn); err != nil {
		if ctx.Err() != nil {
			return err
		}
		f.log.Warn("pgfeed: cannot update the publication; streaming it as it is", "err", err.Error())
	}
	rels, err := f.catalogue(ctx, conn)
	if err != nil {
		return err
	}
	d := decoder{f: f, h: h, rels: rels, relations: map[uint32]*pglogrepl.RelationMessage{}}
	defer d.closeCheck()
	// The connection that confirms commits (visible.go), open before the
	// first one.
	if err := d.openCheck(ctx); err != nil {
		return err
	}
	slot := "idmap_feed_" + randomHex(8)
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, SnapshotAction: "NOEXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return newError("creating a replication slot", err, f.secrets...)
	}
	start, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return newError("reading the slot's position", err)
	}
	err = pglogrepl.StartReplication(ctx, conn, slot, start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + f.o.publication + "'", "messages 'true'"},
	})
	if err != nil {
		return newError("starting replication", err, f.secrets...)
	}
	h.admit(false)
	f.setState(true, slot)
	listening()
	h.gap(bus.Gap{Resumed: true})

	pos := start
	nextStatus := time.Now().Add(f.o.status)
	for {
		if !time.Now().Before(nextStatus) {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos}); err != nil {
				return newError("confirming the position", err, f.secrets...)
			}
			nextStatus = time.Now().Add(f.o.status)
		}
		// Committed transactions that new snapshots show are delivered
		// (visible.go).
		if d.due(time.Now()) {
			if err := d.confirm(ctx); err != nil {
				return err
			}
		}
		// A subscriber that came while streaming is told at the next
		// message, or within admitEvery.
		h.admit(true)
		if st := f.stall.Load(); st != nil {
			st.once.Do(func() { close(st.entered) })
			select {
			case <-st.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		deadline := time.Now().Add(admitEvery)
		if nextStatus.Before(deadline) {
			deadline = nextStatus
		}
		if w := d.wake(time.Now()); !w.IsZero() && w.Before(deadline) {
			deadline = w
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && pgconn.Timeout(err) {
				d.idle = true
				continue
			}
			return newError("receiving", err, f.secrets...)
		}
		d.idle = false
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return newError("streaming", pgconn.ErrorResponseToPgError(m), f.secrets...)
		case *pgproto3.CopyDone:
			return errors.New("pgfeed: the server ended the stream")
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return newError("reading a keepalive", err)
				}
				if pkm.ServerWALEnd > pos && !d.inTx {
					pos = pkm.ServerWALEnd
				}
				// The walsender had nothing more to send.
				d.caughtUp = !d.inTx
				if pkm.ReplyRequested {
					nextStatus = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return newError("reading the stream", err)
				}
				end, err := d.decode(xld.WALData)
				if err == nil {
					err = d.overflow()
				}
				if err != nil {
					return err
				}
				if end > pos {
					pos = end
				}
				// A commit with nothing written after it yet: no
				// other commit is on its way to be confirmed with it.
				d.caughtUp = end > 0 && xld.ServerWALEnd <= end
			}
		}
	}
}

// decoder turns pgoutput messages into idmap messages.
type decoder struct {
	f         *Feed
	h         *subscribers
	rels      map[uint32]*relInfo // from the catalogue, read at connect
	relations map[uint32]*pglogrepl.RelationMessage
	tx        txn
	inTx      bool

	// Committed transactions not yet delivered, in commit order, and what
	// confirms them (visible.go).
	pending []pendingTx
	waiting int       // marks and probes in pending
	since   time.Time // when the oldest of pending was held, or the last confirmation delivered some
	idle    bool      // the last read of the stream timed out
	// caughtUp: the last message was a commit with no WAL after it on the
	// server, or a keepalive between transactions.
	caughtUp bool
	retry    time.Duration
	retryAt  time.Time                               // the first of pending was not visible: ask again from then
	check    *pgconn.PgConn                          // ordinary connection that takes the snapshots, opened when the stream starts
	snap     func(context.Context) (snapshot, error) // tests: takes the snapshots instead
}

// decode handles one pgoutput message; it returns the end of a committed
// transaction, else 0.
func (d *decoder) decode(data []byte) (pglogrepl.LSN, error) {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return 0, newError("decoding the stream", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		d.tx.reset()
		d.tx.xid = m.Xid
		d.inTx = true
	case *pglogrepl.RelationMessage:
		d.relations[m.RelationID] = m
	case *pglogrepl.InsertMessage:
		d.row(m.RelationID, m.Tuple)
	case *pglogrepl.UpdateMessage:
		if m.OldTuple != nil {
			d.row(m.RelationID, m.OldTuple)
		}
		d.row(m.RelationID, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		d.row(m.RelationID, m.OldTuple)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			d.wholeTable(id)
		}
	case *pglogrepl.LogicalDecodingMessage:
		// A message of any other prefix (another feed's probes, other
		// programs' messages) is not this feed's business.
		switch m.Prefix {
		case markPrefix:
			if m.Transactional && d.inTx {
				d.tx.marks = append(d.tx.marks, string(m.Content))
			} else {
				d.hold(pendingTx{marks: []string{string(m.Content)}})
			}
		case d.f.probePrefix:
			token, err := strconv.ParseUint(string(m.Content), 10, 64)
			if err != nil {
				break
			}
			if m.Transactional && d.inTx {
				d.tx.probes = append(d.tx.probes, token)
			} else {
				d.hold(pendingTx{probes: []uint64{token}})
			}
		}
	case *pglogrepl.CommitMessage:
		d.inTx = false
		if err := d.commit(); err != nil {
			return 0, err
		}
		return m.TransactionEndLSN, nil
	}
	return 0, nil
}

// names returns the tables a relation's rows belong to: its own name and
// its ancestors'. ok is false for a relation the catalogue did not list
// (created since the feed connected: maybe a partition whose parents are
// unknown).
func (d *decoder) names(id uint32) (string, *relInfo, bool) {
	rm := d.relations[id]
	ri := d.rels[id]
	switch {
	case ri != nil:
		return ri.name, ri, true
	case rm != nil:
		return strings.ToLower(rm.RelationName), nil, false
	}
	return "", nil, false
}

// wholeTable records a change to every row of relation id.
func (d *decoder) wholeTable(id uint32) {
	name, ri, ok := d.names(id)
	if !ok {
		d.tx.whole = true
		return
	}
	d.tx.table(name).whole = true
	for _, a := range ri.ancestors {
		d.tx.table(a).whole = true
	}
}

// row records a change to the row tuple of relation id: by key, or the
// whole table when its key cannot be read.
func (d *decoder) row(id uint32, tuple *pglogrepl.TupleData) {
	name, ri, ok := d.names(id)
	if !ok {
		d.tx.whole = true
		return
	}
	cols, key, ok := d.key(d.relations[id], ri, tuple)
	targets := append([]string{name}, ri.ancestors...)
	for _, t := range targets {
		c := d.tx.table(t)
		if c.whole {
			continue
		}
		if !ok || (c.cols != nil && !slices.Equal(c.cols, cols)) {
			c.whole = true
			continue
		}
		c.cols = cols
		s := fmt.Sprintf("%#v", key)
		if c.seen[s] {
			continue
		}
		c.seen[s] = true
		c.keys = append(c.keys, key)
		if len(c.keys) > bus.MaxKeys {
			c.whole = true
		}
	}
}

// key reads the primary key of tuple: its columns and its value in a
// message's form (a value, or a []any for a composite key).
func (d *decoder) key(rm *pglogrepl.RelationMessage, ri *relInfo, tuple *pglogrepl.TupleData) ([]string, any, bool) {
	if rm == nil || tuple == nil || len(ri.pk) == 0 {
		return nil, nil, false
	}
	vals := make([]any, len(ri.pk))
	for i, col := range ri.pk {
		j := slices.IndexFunc(rm.Columns, func(c *pglogrepl.RelationMessageColumn) bool { return strings.ToLower(c.Name) == col })
		if j < 0 || j >= len(tuple.Columns) {
			return nil, nil, false
		}
		v, ok := value(rm.Columns[j].DataType, tuple.Columns[j])
		if !ok {
			return nil, nil, false
		}
		vals[i] = v
	}
	if len(vals) == 1 {
		return ri.pk, vals[0], true
	}
	return ri.pk, vals, true
}

// Type OIDs of key columns the feed reads.
const (
	oidBool    = 16
	oidChar    = 18
	oidName    = 19
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidOID     = 26
	oidBPChar  = 1042
	oidVarchar = 1043
	oidUUID    = 2950
)

// value converts a key column's text to a message's key form: int64 for
// integer types, string for text types and uuid. Anything else (numeric,
// time, a NULL, an unchanged TOASTed value) is not read: the change then
// names the whole table.
func value(typ uint32, c *pglogrepl.TupleDataColumn) (any, bool) {
	if c == nil || c.DataType != pglogrepl.TupleDataTypeText {
		return nil, false
	}
	switch typ {
	case oidInt2, oidInt4, oidInt8, oidOID:
		n, err := strconv.ParseInt(string(c.Data), 10, 64)
		return n, err == nil
	case oidText, oidVarchar, oidBPChar, oidName, oidChar, oidUUID:
		return string(c.Data), true
	}
	return nil, false
}

// commit holds the transaction's messages, then its marks, then its
// probes, until a snapshot shows it (visible.go).
func (d *decoder) commit() error {
	t := &d.tx
	var msgs []bus.Message
	if t.whole || len(t.tables) > maxTables {
		msgs = append(msgs, bus.Message{})
	} else {
		names := make([]string, 0, len(t.tables))
		for n := range t.tables {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			c := t.tables[n]
			m := bus.Message{Table: n}
			if !c.whole && len(c.keys) > 0 {
				m.Keys, m.Columns = c.keys, c.cols
			}
			msgs = append(msgs, m)
		}
	}
	if len(msgs) > 0 && t.xid == 0 {
		// pgoutput's Begin carries the transaction's id: without it, no
		// snapshot can confirm the commit. Start over (a gap).
		return errors.New("pgfeed: a streamed transaction has no transaction id")
	}
	p := pendingTx{msgs: msgs, marks: slices.Clone(t.marks), probes: slices.Clone(t.probes)}
	if len(msgs) > 0 {
		p.xid = t.xid
	}
	d.hold(p)
	t.reset()
	return nil
}

func (d *decoder) deliver(m bus.Message) {
	m.Origin, m.DB, m.Seq = d.f.origin, d.f.db, d.f.seq.Add(1)
	d.h.message(m)
}

// admitEvery bounds how long a subscriber that comes while the feed
// streams waits to be told that it listens.
const admitEvery = 500 * time.Millisecond

// subscribers are the feed's subscribers as its goroutine sees them: each
// is told it listens (Gap Resumed) before its first message.
type subscribers struct {
	f    *Feed
	subs []bus.Handler
}

// admit takes the subscribers that came since the last call, telling them
// that the feed listens when it does.
func (s *subscribers) admit(listening bool) {
	s.f.mu.Lock()
	p := s.f.pending
	s.f.pending = nil
	s.f.mu.Unlock()
	for _, h := range p {
		if listening && h.Gap != nil {
			h.Gap(bus.Gap{Resumed: true})
		}
		s.subs = append(s.subs, h)
	}
}

func (s *subscribers) gap(g bus.Gap) {
	for _, h := range s.subs {
		if h.Gap != nil {
			h.Gap(g)
		}
	}
}

// probe hands a probe's token to every subscriber: everything committed
// before the probe has been delivered.
func (s *subscribers) probe(token uint64) {
	for _, h := range s.subs {
		if h.Probe != nil {
			h.Probe(token)
		}
	}
}

func (s *subscribers) message(m bus.Message) {
	for _, h := range s.subs {
		if h.Message != nil {
			h.Message(m)
		}
	}
}
