package pgfeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/go-idmap/idmap/bus"
)

// Visibility. The server streams a transaction's commit once its commit
// record is flushed to the WAL, which is before the transaction is visible:
// the committing backend flushes the record, then (after waiting for
// synchronous standbys, if any) removes the transaction from the set of
// running ones that new snapshots read. A query that begins between the
// two still reads the rows as they were. Were the feed to deliver the
// transaction at its commit message, such a query, begun after the
// expiry, would load the old row and store it as fresh: stale until the
// row's next write.
//
// So the feed delivers a committed transaction only once a snapshot taken
// after its commit was streamed shows it (confirmed): every query that
// begins after the delivery takes a later snapshot, which shows it too. It
// asks on an ordinary connection of its own (pg_current_snapshot),
// batching: at once after a commit with nothing written after it on the
// server (or a keepalive), or when a read-your-writes mark or a probe
// waits behind it; on a busy stream, once it has nothing more to read for
// confirmIdle (which the runtime's poller rounds up to about 1 ms), or
// confirmEvery after the oldest undelivered commit. Transactions are
// delivered in commit order, marks and probes after everything committed
// before them, so that a mark or a probe still proves what it proved. A
// transaction that does not become visible (a synchronous standby that
// does not answer) holds back every later one, its marks and probes: the
// writers' syncs time out, and the lease of a database attached to the
// feed expires, so that nothing is served meanwhile.

// pendingTx is a committed transaction, or a mark or probe outside one,
// not yet delivered.
type pendingTx struct {
	xid    uint32 // 0: nothing to confirm (marks or probes only)
	msgs   []bus.Message
	marks  []string
	probes []uint64
}

const (
	// confirmIdle is how long the stream stays silent before the feed
	// confirms what it holds; confirmEvery, how long it holds a commit
	// while the stream stays busy.
	confirmIdle  = 100 * time.Microsecond
	confirmEvery = time.Millisecond
	// A transaction not yet visible is asked about again after
	// retryFirst, then after twice as long each time, up to retryMax.
	retryFirst = 100 * time.Microsecond
	retryMax   = 10 * time.Millisecond
	// maxHeld bounds the transactions held behind one that does not
	// become visible: past it the stream ends (a gap: the subscriber
	// flushes and pauses), so that a stuck commit costs no unbounded
	// memory.
	maxHeld = 100_000
)

// overflow reports, as the error that ends the stream, too many held
// transactions.
func (d *decoder) overflow() error {
	if len(d.pending) <= maxHeld {
		return nil
	}
	return fmt.Errorf("pgfeed: %d committed transactions wait behind one that new snapshots do not show yet (a synchronous standby that does not answer?)", len(d.pending))
}

// hold queues p behind the transactions not yet delivered, or delivers it
// at once when there are none and it needs no confirmation.
func (d *decoder) hold(p pendingTx) {
	if p.xid == 0 && len(d.pending) == 0 {
		d.release(p)
		return
	}
	if len(d.pending) == 0 {
		d.since = time.Now()
	}
	d.waiting += len(p.marks) + len(p.probes)
	d.pending = append(d.pending, p)
}

// release delivers p: its messages, then its marks, then its probes.
func (d *decoder) release(p pendingTx) {
	for _, m := range p.msgs {
		d.deliver(m)
	}
	for _, mark := range p.marks {
		d.f.delivered(mark)
	}
	for _, token := range p.probes {
		d.h.probe(token)
	}
}

// due reports whether the feed should confirm what it holds now.
func (d *decoder) due(now time.Time) bool {
	if len(d.pending) == 0 || now.Before(d.retryAt) {
		return false
	}
	return d.idle || d.caughtUp || d.waiting > 0 || now.Sub(d.since) >= confirmEvery
}

// wake returns when the stream reader should stop waiting for a message
// to confirm what it holds (zero: it holds nothing).
func (d *decoder) wake(now time.Time) time.Time {
	if len(d.pending) == 0 {
		return time.Time{}
	}
	at := now.Add(confirmIdle)
	if d.retryAt.After(at) {
		at = d.retryAt
	}
	return at
}

// confirm delivers, in order, the held transactions that a snapshot taken
// now shows, and what follows them up to the first one it does not show.
func (d *decoder) confirm(ctx context.Context) error {
	var snap snapshot
	have := false
	n := 0
	for _, p := range d.pending {
		if p.xid != 0 {
			if !have {
				var err error
				take := d.snapshot
				if d.snap != nil {
					take = d.snap
				}
				if snap, err = take(ctx); err != nil {
					return err
				}
				have = true
			}
			if !snap.shows(p.xid) {
				break
			}
		}
		d.waiting -= len(p.marks) + len(p.probes)
		d.release(p)
		n++
	}
	clear(d.pending[:n])
	d.pending = slices.Delete(d.pending, 0, n)
	now := time.Now()
	if len(d.pending) > 0 {
		// The first one left is not visible yet.
		if n > 0 || d.retry == 0 {
			d.retry = retryFirst
		} else {
			d.retry = min(2*d.retry, retryMax)
		}
		d.retryAt = now.Add(d.retry)
		if n > 0 {
			d.since = now
		}
	} else {
		d.retry, d.retryAt = 0, time.Time{}
	}
	return nil
}

// openCheck opens the feed's ordinary connection that takes the
// snapshots, unless it is open.
func (d *decoder) openCheck(ctx context.Context) error {
	if d.check != nil && !d.check.IsClosed() {
		return nil
	}
	d.closeCheck()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, d.f.probeCfg)
	if err != nil {
		return newError("connecting to confirm commits", err, d.f.secrets...)
	}
	d.check = conn
	return nil
}

// snapshot takes a snapshot on the feed's ordinary connection (openCheck).
func (d *decoder) snapshot(ctx context.Context) (snapshot, error) {
	if err := d.openCheck(ctx); err != nil {
		return snapshot{}, err
	}
	res, err := d.check.Exec(ctx, "SELECT pg_current_snapshot()::text, pg_is_in_recovery()").ReadAll()
	if err != nil {
		return snapshot{}, newError("confirming commits", err, d.f.secrets...)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 2 {
		return snapshot{}, fmt.Errorf("pgfeed: confirming commits: pg_current_snapshot() returned no row")
	}
	// A standby's snapshots show a commit once it has replayed it, which
	// may be before the primary shows it (and a multi-host connection
	// string may lead the two connections to different servers).
	if string(res[0].Rows[0][1]) != "f" {
		return snapshot{}, errors.New("pgfeed: confirming commits: the connection reached a standby (pg_is_in_recovery); the feed's connections must reach the primary")
	}
	return parseSnapshot(string(res[0].Rows[0][0]))
}

// closeCheck closes the connection of snapshot, if open.
func (d *decoder) closeCheck() {
	if d.check != nil {
		closeQuietly(d.check)
		d.check = nil
	}
}

// snapshot is a pg_snapshot: transactions below xmin are finished, those
// from xmax on had not begun, and xip lists those in progress between.
type snapshot struct {
	xmin, xmax uint64
	xip        []uint64
}

// parseSnapshot parses a pg_snapshot's text, xmin:xmax:xip,xip,...
func parseSnapshot(s string) (snapshot, error) {
	bad := func() (snapshot, error) {
		return snapshot{}, fmt.Errorf("pgfeed: confirming commits: cannot read the snapshot %q", s)
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return bad()
	}
	var sn snapshot
	var err error
	if sn.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return bad()
	}
	if sn.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil || sn.xmax < sn.xmin {
		return bad()
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return bad()
			}
			sn.xip = append(sn.xip, v)
		}
	}
	return sn, nil
}

// shows reports whether a query with snapshot s sees the committed
// transaction xid (32 bits, as the stream gives it: the epoch is xmax's,
// or the one before when xid is above xmax's low bits). A transaction id
// that cannot be placed is not shown: the feed asks again.
func (s snapshot) shows(xid uint32) bool {
	full := s.xmax&^0xffffffff | uint64(xid)
	if full >= s.xmax {
		if s.xmax>>32 == 0 {
			return false
		}
		full -= 1 << 32
	}
	return full < s.xmin || !slices.Contains(s.xip, full)
}
