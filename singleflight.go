package idmap

import (
	"context"
	"database/sql"
	"sync"

	"github.com/go-idmap/idmap/cache"
)

// flightKey names a load in flight: one key of one map through one Querier.
type flightKey struct {
	q     Querier      // *sql.DB, *sql.Tx or *sql.Conn (comparable pointers)
	scope *cache.Scope // with a *sql.DB: the scope's map; nil: the shared map
	typ   *cache.Type
	key   any
}

// flightQuerier reports whether q can key a flight: the database/sql types,
// not a caller's own Querier (which need not be comparable).
func flightQuerier(q Querier) bool {
	switch q.(type) {
	case *sql.DB, *sql.Tx, *sql.Conn:
		return true
	}
	return false
}

// flight is a load in flight; the goroutines that miss the same key wait
// for done.
type flight struct {
	done chan struct{} // closed when the load is over
}

var flights sync.Map // flightKey → *flight

// flightWaitHook, set by tests only, is called when a Get starts waiting
// for another's load.
var flightWaitHook func()

// loadOnce runs load for the miss fk, unless another goroutine is loading
// it: concurrent misses of one key load once. Goroutines that miss the same
// key of the same map through the same Querier (*sql.DB with the same
// scope, or the same *sql.Tx or *sql.Conn) wait for the first one's query
// instead of sending their own; then each looks the key up again, and takes
// the object only if it is fresh for it (a write that finished after the
// first query began makes the others load again), so that waiting never
// serves what a query of one's own would not.
func loadOnce(ctx context.Context, fk flightKey, cm cache.Map, typ *cache.Type, load func() (any, error)) (any, error) {
	f := &flight{done: make(chan struct{})}
	if prev, loaded := flights.LoadOrStore(fk, f); loaded {
		if flightWaitHook != nil {
			flightWaitHook()
		}
		select {
		case <-prev.(*flight).done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if p, st := cm.Lookup(typ, fk.key); st == cache.Fresh {
			return p, nil
		}
		return load() // the first load failed, or is not fresh for us
	}
	defer func() {
		flights.CompareAndDelete(fk, f)
		close(f.done)
	}()
	return load()
}
