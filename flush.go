package idmap

import (
	"context"
	"log/slog"
	"reflect"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/signals"
)

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

// flushNamed is Flush and FlushType (typ nil: every type): with no names, the
// maps of every database (or, in a scope, of every database the scope
// holds); else those of each database named, where an unknown name flushes
// nothing but still sends its signals. In a scope, only the scope is
// flushed; the shared maps are untouched.
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

// objPointer returns the object and model of a pointer to a mapped struct.
func objPointer(obj any) (unsafe.Pointer, *model) {
	rv := reflect.ValueOf(obj)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, nil
	}
	m := modelOf(rv.Type().Elem())
	if !m.mapped || m.err != nil {
		return nil, nil
	}
	return rv.UnsafePointer(), m
}

// countFlush counts a flush of d in its statistics, and logs it.
func countFlush(d *cache.DB, reason signals.Reason, table string, scoped bool) {
	d.CountFlush(int(reason))
	logDebug(d, "idmap: flush", slog.String("reason", reason.String()), slog.String("table", table), slog.Bool("scope", scoped))
}
