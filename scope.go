package idmap

import (
	"context"
	"log/slog"
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

func stateFrom(ctx context.Context) ctxState {
	if ctx == nil {
		return ctxState{}
	}
	if st, ok := ctx.Value(ctxKey{}).(*ctxState); ok {
		return *st
	}
	return ctxState{}
}

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

func scopeFrom(ctx context.Context) *cache.Scope { return stateFrom(ctx).scope }

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

// countFlush counts a flush of d in its statistics, and logs it.
func countFlush(d *cache.DB, reason signals.Reason, table string, scoped bool) {
	d.CountFlush(int(reason))
	logDebug(d, "idmap: flush", slog.String("reason", reason.String()), slog.String("table", table), slog.Bool("scope", scoped))
}

// Flush forgets every object of ctx's scope, or of the shared maps when ctx
// carries no scope, in the databases named (every database when none is
// named). Objects already handed out stay valid; the next load makes new
// canonical objects. PreFlush and PostFlush are sent, with reason Manual,
// once per database named, or once with DB "" when none is.
func Flush(ctx context.Context, dbs ...string) {
	flushNamed(ctx, nil, "", dbs)
}

// FlushType is Flush for the objects of type T only. Its signals carry T's
// table. It does nothing for a type that is not mapped.
func FlushType[T any](ctx context.Context, dbs ...string) {
	m := modelOf(typeFor[T]())
	if !m.mapped || m.err != nil {
		return
	}
	flushNamed(ctx, m.ctype, m.table, dbs)
}

func flushNamed(ctx context.Context, typ *cache.Type, table string, dbs []string) {
	s := scopeFrom(ctx)
	if len(dbs) == 0 {
		f := signals.Flush{Table: table, Reason: signals.Manual, Scoped: s != nil}
		signals.PreFlush.Send(f)
		if s != nil {
			for _, d := range s.DBs() {
				countFlush(d, signals.Manual, table, true)
			}
			s.Flush(nil, typ)
		} else {
			for _, d := range allMaps() {
				countFlush(d, signals.Manual, table, false)
				d.FlushShared(typ)
			}
		}
		signals.PostFlush.Send(f)
		return
	}
	for _, name := range dbs {
		f := signals.Flush{DB: name, Table: table, Reason: signals.Manual, Scoped: s != nil}
		signals.PreFlush.Send(f)
		if d := lookupMaps(name); d != nil {
			countFlush(d, signals.Manual, table, s != nil)
			if s != nil {
				s.Flush(d, typ)
			} else {
				d.FlushShared(typ)
			}
		}
		signals.PostFlush.Send(f)
	}
}

// flushDB flushes the shared maps of d (the types on table only, if not "")
// for an automatic reason, and expires what scopes hold of it: a writer
// never visits scopes, which find the expiry when they next read.
func flushDB(d *cache.DB, table string, reason signals.Reason) {
	f := signals.Flush{DB: d.Name(), Table: table, Reason: reason}
	signals.PreFlush.Send(f)
	countFlush(d, reason, table, false)
	if table == "" {
		d.FlushShared(nil)
		d.ExpireAll()
	} else {
		d.FlushSharedTable(table)
		d.ExpireTable(table)
	}
	signals.PostFlush.Send(f)
}

// FlushInstance forgets obj, a pointer to a mapped object, in ctx's scope or
// in the shared maps, in every database where it is the canonical object. It
// sends no signal. Anything else is ignored.
func FlushInstance(ctx context.Context, obj any) {
	p, m := objPointer(obj)
	if m == nil {
		return
	}
	key, err := m.objKey("FlushInstance", p)
	if err != nil {
		return
	}
	o := m.obj(p) // a *T, as the maps hold it, whatever obj's named pointer type
	s := scopeFrom(ctx)
	for _, d := range allMaps() {
		if s != nil {
			s.In(d).Remove(m.ctype, key, o)
		} else {
			d.Shared().Remove(m.ctype, key, o)
		}
	}
}
