package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/signals"
)

// The API that SPEC.md fixes, with its exact signatures: this file stops
// compiling if one of them changes. Cached and Intern take a Querier, as
// SPEC allows (a *sql.DB argument still compiles).
var (
	_ func(string) string                                           = idmap.Register
	_ func(string, string, ...idmap.Option) (*sql.DB, error)        = idmap.Open
	_ func(driver.Connector, ...idmap.Option) driver.Connector      = idmap.NewConnector
	_ func(*sql.DB) string                                          = idmap.NameOf
	_ func(string) idmap.Option                                     = idmap.Name
	_ func(string) idmap.Option                                     = idmap.Dialect
	_ func(string) idmap.ModelOption                                = idmap.Table
	_ func() idmap.ModelOption                                      = idmap.StrongRefs
	_ func(...idmap.ModelOption)                                    = idmap.Model[User]
	_ func(context.Context) context.Context                         = idmap.NewContext
	_ func(http.Handler) http.Handler                               = idmap.Middleware
	_ func(context.Context) context.Context                         = idmap.WithRefresh
	_ func(*sql.Rows, any) error                                    = idmap.Bind
	_ func(context.Context, idmap.Querier, ...any) (*User, error)   = idmap.Get[User]
	_ func(context.Context, idmap.Querier, ...any) ([]*User, error) = idmap.GetMany[User]
	_ func(context.Context, idmap.Querier, ...any) *User            = idmap.Cached[User]
	_ func(context.Context, idmap.Querier, []*User) error           = idmap.Intern[User]
	_ func(context.Context, ...string)                              = idmap.Flush
	_ func(context.Context, ...string)                              = idmap.FlushType[User]
	_ func(context.Context, any)                                    = idmap.FlushInstance
	_ func(*sql.DB) (idmap.Stats, bool)                             = idmap.StatsOf
	_ func() []idmap.Stats                                          = idmap.AllStats
	_ func() http.Handler                                           = idmap.StatsHandler
	_ func(bus.Bus) idmap.Option                                    = idmap.WithBus
	_ func(time.Duration) idmap.Option                              = idmap.MaxAge
	_ func(int) idmap.Option                                        = idmap.MaxStrongEntries
	_ func(*slog.Logger) idmap.Option                               = idmap.Logger
	_ func() idmap.Option                                           = idmap.NoSharedMap
	_ func() string                                                 = idmap.InstanceID
	_ interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	} = idmap.Querier(nil)
	_ idmap.Querier = (*sql.DB)(nil)
	_ idmap.Querier = (*sql.Tx)(nil)
	_ idmap.Querier = (*sql.Conn)(nil)

	_ func() *bus.Loopback = bus.NewLoopback
	_ bus.Bus              = bus.NewLoopback()
	_                      = bus.Handler{Message: func(bus.Message) {}, Gap: func(bus.Gap) {}}
	_                      = bus.Gap{Resumed: true, Err: nil}
	_                      = bus.Message{Origin: "", Seq: 0, DB: "", Table: "", Keys: []any{}, Columns: []string{}}

	_                                  = []signals.Reason{signals.Manual, signals.RequestEnd, signals.TxEnd, signals.SchemaChange}
	_                                  = signals.Flush{DB: "", Table: "", Reason: signals.Manual, Scoped: false}
	_ func(func(signals.Flush)) func() = signals.PreFlush.Connect
	_ func(func(signals.Flush)) func() = signals.PostFlush.Connect
)

// The bus interfaces SPEC fixes, method by method.
type specBus interface {
	Publish(ctx context.Context, msgs []bus.Message) error
	Subscribe(h bus.Handler) error
}

type specConnPublisher interface {
	bus.Bus
	Statement(msgs []bus.Message) (query string, args []any)
}

var (
	_ specBus           = bus.Bus(nil)
	_ bus.Bus           = specBus(nil)
	_ specConnPublisher = bus.ConnPublisher(nil)
	_ bus.ConnPublisher = specConnPublisher(nil)
)
