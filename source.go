package idmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-idmap/idmap/bus"
)

// attachSources subscribes d to each source, undoing it all on an error.
//
// Every source of invalidations follows one set of rules: a bus
// (WithBus) and a change feed (WithSource) are both subscriptions of
// bus.go. Their messages expire through the same epochs as local writes,
// and a gap in any of them pauses and flushes the database until it is
// back.
func (db *database) attachSources(srcs []bus.Bus, lease time.Duration) error {
	for i, src := range srcs {
		if err := attach(src, db.cdb, lease); err != nil {
			for _, s := range srcs[:i] {
				detach(s, db.cdb)
			}
			// attach's error names WithBus; say which option failed.
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			return fmt.Errorf("idmap: WithSource: subscribing: %w", err)
		}
		db.sources = append(db.sources, src)
		if s, ok := src.(bus.Syncer); ok {
			db.syncers = append(db.syncers, s)
		}
	}
	return nil
}

// unbounded reports whether writes have effects that the statement
// reader could not bound (effects.unbounded), or whether what they were
// was not kept (all: the transaction's list overflowed).
func unbounded(effs []*effects, all bool) bool {
	if all {
		return true
	}
	for _, e := range effs {
		if e != nil && e.unbounded {
			return true
		}
	}
	return false
}

// syncSources runs after a commit of effs on c: when the reader could not
// bound them, it waits until each Syncer source has delivered the commit.
// A source that cannot say so makes the whole database expire instead.
func (c *connState) syncSources(ctx context.Context, effs []*effects, all bool) {
	db := c.db
	if len(db.syncers) == 0 || !unbounded(effs, all) {
		return
	}
	for _, s := range db.syncers {
		query, args, wait := s.SyncStatement()
		err := c.execBase(ctx, query, args)
		wctx := ctx
		if err != nil {
			done, cancel := context.WithCancel(ctx)
			cancel()
			wctx = done
		}
		werr := wait(wctx)
		if err == nil {
			err = werr
		}
		if err != nil {
			db.cdb.ExpireAll()
			logWarn(db.cdb, "idmap: the change feed did not confirm a commit; the database expires instead", slog.Any("error", err))
		}
	}
}
