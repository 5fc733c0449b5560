package idmap

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/signals"
)

// txState is an open transaction: begun with BeginTx, or with BEGIN sent as
// SQL (raw).
type txState struct {
	epoch   uint64       // the database's clock when it began
	scope   *cache.Scope // where its loads go
	view    cache.Map    // scope.In(the database), made by the first probe that needs it
	own     bool         // scope made for the transaction, ended with it
	raw     bool         // begun by SQL text, not by BeginTx
	pending []*effects   // what it wrote: expired at once, and again when it ends
	tooMany bool         // pending overflowed: expire the whole database at the end
}

// maxPending bounds what a transaction remembers of its writes; past it,
// its end expires the whole database.
const maxPending = 1024

// begin opens c's transaction: in the context's scope (a unit of work) when
// it has one, else in a scope of its own that ends with the transaction.
// raw: begun by SQL text, not by BeginTx.
func (c *connState) begin(ctx context.Context, raw bool) {
	s := scopeFrom(ctx)
	// Tick: what the transaction loads has an epoch of its own, so that its
	// end can tell it from what its scope held before.
	t := &txState{scope: s, raw: raw, epoch: c.db.cdb.Tick()}
	if s == nil {
		t.scope, t.own = cache.NewScope(), true
	}
	c.tx = t
}

// end closes the open transaction. What it wrote was expired when it was
// written; it is expired again now that it is committed (or rolled back),
// since other maps may have loaded the old rows in between. What it loaded
// into a scope that outlives it is expired too.
func (c *connState) end(rollback bool) {
	t := c.tx
	if t == nil {
		return
	}
	c.tx = nil
	t.republish(c.db)
	if !t.own {
		// What the transaction loaded into the unit of work's scope may be
		// what only it saw: its own writes, rolled back, or the snapshot of
		// a REPEATABLE READ transaction, older than writes that others
		// committed meanwhile. It is reloaded at the next read.
		t.scope.ExpireLoadedSince(c.db.cdb, t.epoch)
		return
	}
	if !c.db.noFlush[signals.TxEnd] {
		endScope(t.scope, signals.TxEnd, c.db.name)
		return
	}
	if rollback {
		t.scope.End()
		return
	}
	shared := c.db.cdb.Shared()
	for _, it := range t.scope.Drain(c.db.cdb) {
		shared.Put(it.Type, &cache.Load{Key: it.Key, Obj: it.Obj, Epoch: min(it.Epoch, t.epoch), Partial: it.Partial}, nil)
	}
}

// republish expires again everything the transaction wrote.
func (t *txState) republish(db *database) {
	if t.tooMany {
		db.cdb.ExpireAll()
		return
	}
	for _, e := range t.pending {
		db.expire(e)
	}
}

// record keeps a write of the open transaction for its end.
func (t *txState) record(e *effects) {
	if t.tooMany {
		return
	}
	if len(t.pending) >= maxPending {
		t.pending, t.tooMany = nil, true
		return
	}
	t.pending = append(t.pending, e)
}

// ConnBeginTx begins a transaction on the base connection and opens the
// connection's txState once the base has begun it: a failed begin leaves
// the state as it was.
func (i *interceptor) ConnBeginTx(ctx context.Context, conn driver.ConnBeginTx, opts driver.TxOptions) (context.Context, driver.Tx, error) {
	var tx driver.Tx
	var err error
	if i.c.hasBeginTx {
		tx, err = conn.BeginTx(ctx, opts)
	} else {
		tx, err = beginWithoutContext(ctx, i.c.base, opts)
	}
	if err != nil {
		return ctx, nil, err
	}
	if t := i.c.tx; t != nil && t.raw {
		// MySQL commits the transaction open (BEGIN or autocommit off)
		// before it starts another.
		i.c.end(false)
		i.c.publishNow(ctx, t.pending, t.tooMany)
	}
	i.c.begin(ctx, false)
	return ctx, tx, nil
}

// TxCommit commits, ends the connection's txState and publishes what the
// transaction wrote: after the commit (or a commit whose outcome is
// unknown), or, for a ConnPublisher, inside the transaction before it
// commits. A failed publish before the commit rolls the transaction back,
// so that no write commits unannounced.
func (i *interceptor) TxCommit(ctx context.Context, tx driver.Tx) error {
	t := i.c.tx
	// A ConnPublisher's messages go in the transaction itself: sent if and
	// only if it commits.
	early, perr := i.c.publishBeforeCommit(ctx)
	if perr != nil {
		rerr := tx.Rollback()
		i.c.end(true)
		return errors.Join(fmt.Errorf("idmap: publishing invalidations before COMMIT failed, the transaction was rolled back: %w", perr), rerr)
	}
	err := tx.Commit()
	// Whether or not the commit succeeded, the transaction is over; a
	// failed commit rolled back, and the end expires as a rollback does.
	i.c.end(err != nil)
	if t != nil && !early && (err == nil || uncertain(err)) {
		// Committed, or perhaps (the connection broke): publish.
		i.c.publishNow(ctx, t.pending, t.tooMany)
	} else if t != nil && early && err == nil {
		i.c.syncSources(ctx, t.pending, t.tooMany)
	}
	i.c.chain()
	return err
}

// TxRollback rolls back and ends the connection's txState (end); nothing is
// published.
func (i *interceptor) TxRollback(ctx context.Context, tx driver.Tx) error {
	err := tx.Rollback()
	i.c.end(true)
	i.c.chain()
	return err
}

// beginWithoutContext is database/sql's ctxDriverBegin for a connection
// without ConnBeginTx (sqlmw's fallback ignores the options).
func beginWithoutContext(ctx context.Context, c driver.Conn, opts driver.TxOptions) (driver.Tx, error) {
	if opts.Isolation != driver.IsolationLevel(0) {
		return nil, errors.New("sql: driver does not support non-default isolation level")
	}
	if opts.ReadOnly {
		return nil, errors.New("sql: driver does not support read-only transactions")
	}
	if ctx.Done() == nil {
		//lint:ignore SA1019 the base has no ConnBeginTx: its Begin is all there is
		return c.Begin() //nolint:staticcheck
	}
	//lint:ignore SA1019 as above
	tx, err := c.Begin() //nolint:staticcheck
	if err == nil {
		select {
		default:
		case <-ctx.Done():
			tx.Rollback()
			return nil, ctx.Err()
		}
	}
	return tx, err
}
