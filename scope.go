package idmap

import (
	"context"
	"net/http"

	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/signals"
)

// ctxKey is the context key of idmap's state: one key, so that a query
// looks its context up once.
type ctxKey struct{}

// ctxState is what a context says to idmap.
type ctxState struct {
	scope   *cache.Scope // the unit of work's map, or nil for the shared maps
	refresh bool         // WithRefresh
}

// stateFrom returns the state that ctx carries; a nil context, or one that
// carries none, is the zero state: the shared maps, no refresh.
func stateFrom(ctx context.Context) ctxState {
	if ctx == nil {
		return ctxState{}
	}
	if st, ok := ctx.Value(ctxKey{}).(*ctxState); ok {
		return *st
	}
	return ctxState{}
}

// hitScope is stateFrom for a hit path: the scope ctx selects, and false
// when ctx asks for a refresh (no hit may be served). ctx is not nil, and
// not a context with no values (isBackground), which getHit answers
// without a call.
func hitScope(ctx context.Context) (*cache.Scope, bool) {
	st, _ := ctx.Value(ctxKey{}).(*ctxState)
	if st == nil {
		return nil, true
	}
	return st.scope, !st.refresh
}

// withState returns a context derived from ctx that carries st. The state
// is stored by pointer and never changed after: a context's state is read
// by copy (stateFrom), and each change makes a new context.
func withState(ctx context.Context, st ctxState) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, ctxKey{}, &st)
}

// NewContext returns a context that carries a new scope: a private identity
// map for one unit of work. Queries run with it (or a context derived from
// it) and Get, Cached, Intern and the flush functions called with it use the
// scope instead of the shared maps. A scope holds its objects strongly; drop
// the context, or Flush it, when the unit of work ends.
func NewContext(ctx context.Context) context.Context {
	st := stateFrom(ctx)
	st.scope = cache.NewScope()
	return withState(ctx, st)
}

// Middleware gives each request a scope of its own (see NewContext), flushed
// when the handler returns, with PreFlush and PostFlush signals of reason
// RequestEnd.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := cache.NewScope()
		defer endScope(s, signals.RequestEnd, "")
		st := stateFrom(r.Context())
		st.scope = s
		next.ServeHTTP(w, r.WithContext(withState(r.Context(), st)))
	})
}

// WithRefresh returns a context with which loaded rows overwrite their
// canonical objects even when those are fresh: in a scope, in place; in the
// shared map, by a new object.
func WithRefresh(ctx context.Context) context.Context {
	st := stateFrom(ctx)
	st.refresh = true
	return withState(ctx, st)
}

// scopeFrom returns the scope that ctx carries, or nil for the shared maps.
func scopeFrom(ctx context.Context) *cache.Scope { return stateFrom(ctx).scope }

// refreshFrom reports whether ctx was made by WithRefresh.
func refreshFrom(ctx context.Context) bool { return stateFrom(ctx).refresh }

// endScope ends a scope with flush signals; db is the database the scope
// belonged to ("" for a request scope, which spans every database).
func endScope(s *cache.Scope, reason signals.Reason, db string) {
	f := signals.Flush{DB: db, Reason: reason, Scoped: true}
	signals.PreFlush.Send(f)
	dbs := s.DBs()
	if d := lookupMaps(db); db != "" && d != nil {
		dbs = []*cache.DB{d}
	}
	for _, d := range dbs {
		countFlush(d, reason, "", true)
	}
	s.End()
	signals.PostFlush.Send(f)
}
