package fakedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

var (
	_ driver.Driver        = (*drv)(nil)
	_ driver.DriverContext = drvContext{}
)

// Driver is one scripted fake database. It is not itself a driver.Driver:
// its values are reached through [Driver.Register] (for sql.Open),
// [Driver.Connector] (for sql.OpenDB) or [Driver.Driver]. Its methods are
// safe for concurrent use.
//
// The driver values it produces are, like any driver's, meant for one
// goroutine at a time, which database/sql guarantees; they take no locks of
// their own, so a wrapper that breaks that rule shows up under -race.
type Driver struct {
	h   Handler
	cfg config        // read-only after New
	drv driver.Driver // the value database/sql sees; read-only after New

	regOnce sync.Once
	regName string // written once, inside regOnce

	mu     sync.Mutex // protects log, stats and lastID
	log    []Query
	stats  Stats
	lastID int // ID of the last connection opened or being opened
}

// Stats counts the values a Driver made and which of them are still open.
type Stats struct {
	ConnsOpened int // connections opened (KindConnect succeeded)
	ConnsClosed int // connections closed
	OpenConns   int // ConnsOpened - ConnsClosed
	OpenStmts   int // prepared statements not closed
	OpenRows    int // rows not closed
	OpenTxs     int // transactions neither committed nor rolled back

	ConnectorsClosed int // calls of Close on a connector (CapConnectorCloser)
}

// New returns a Driver that answers every statement with h (a nil h answers
// every statement with an empty Result and no error).
func New(h Handler, opts ...Option) *Driver {
	d := &Driver{h: h, cfg: config{caps: AllCaps}}
	for _, o := range opts {
		o(&d.cfg)
	}
	d.drv = pickDriver(&drv{d: d}, d.cfg.caps)
	return d
}

// Caps returns the caps the Driver was made with.
func (d *Driver) Caps() Caps { return d.cfg.caps }

// Driver returns the driver.Driver value that database/sql sees: it
// implements driver.DriverContext exactly when CapDriverContext is set. The
// same value is returned every time.
func (d *Driver) Driver() driver.Driver { return d.drv }

// Connector returns a new driver.Connector for sql.OpenDB; its connections
// have the DSN "". It implements io.Closer exactly when CapConnectorCloser
// is set.
func (d *Driver) Connector() driver.Connector { return d.connector("") }

var registered atomic.Int64 // the number in the last name given out by Register

// Register registers the Driver with database/sql under a new unique name,
// "fakedb-1", "fakedb-2", …, and returns it; later calls return the same
// name. sql.Open(name, dsn) then opens connections with that DSN.
func (d *Driver) Register() string {
	d.regOnce.Do(func() {
		for {
			name := fmt.Sprintf("fakedb-%d", registered.Add(1))
			if !slices.Contains(sql.Drivers(), name) {
				d.regName = name
				break
			}
		}
		sql.Register(d.regName, d.drv)
	})
	return d.regName
}

// Log returns a copy of the calls received so far, in the order they were
// received (a call is logged before it is answered, so a Handler that
// blocks has its call logged already). With kinds, it returns only the
// calls of those kinds. Calls of Close are not logged; Stats counts them.
// The Args slices are copies; the values in them are not.
func (d *Driver) Log(kinds ...Kind) []Query {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Query, 0, len(d.log))
	for _, q := range d.log {
		if len(kinds) == 0 || slices.Contains(kinds, q.Kind) {
			q.Args = slices.Clone(q.Args)
			out = append(out, q)
		}
	}
	return out
}

// Stats returns the current counts.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// CheckLeaks returns an error naming the statements, rows and transactions
// still open, or nil. Connections are not counted, since database/sql keeps
// idle ones open: close the *sql.DB first, then check Stats().OpenConns.
func (d *Driver) CheckLeaks() error {
	s := d.Stats()
	var errs []error
	if s.OpenStmts != 0 {
		errs = append(errs, fmt.Errorf("fakedb: %d statements still open", s.OpenStmts))
	}
	if s.OpenRows != 0 {
		errs = append(errs, fmt.Errorf("fakedb: %d rows still open", s.OpenRows))
	}
	if s.OpenTxs != 0 {
		errs = append(errs, fmt.Errorf("fakedb: %d transactions still open", s.OpenTxs))
	}
	return errors.Join(errs...)
}

// record appends a copy of q to the log.
func (d *Driver) record(q *Query) {
	c := *q
	c.Args = slices.Clone(q.Args)
	d.mu.Lock()
	d.log = append(d.log, c)
	d.mu.Unlock()
}

// count applies f to the stats.
func (d *Driver) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

// handle asks the Handler about q.
func (d *Driver) handle(ctx context.Context, q *Query) (*Result, error) {
	if d.h == nil {
		return nil, nil
	}
	return d.h(ctx, q)
}

// open opens connection number lastID+1.
func (d *Driver) open(ctx context.Context, dsn string) (driver.Conn, error) {
	if err := d.cfg.caps.Check(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.lastID++
	c := &conn{d: d, id: d.lastID, dsn: dsn}
	d.mu.Unlock()
	if _, err := c.call(ctx, &Query{Kind: KindConnect}); err != nil {
		return nil, err
	}
	d.count(func(s *Stats) { s.ConnsOpened++; s.OpenConns++ })
	return pickConn(c, d.cfg.caps), nil
}

// drv is the base driver.Driver value.
type drv struct{ d *Driver }

func (x *drv) Open(dsn string) (driver.Conn, error) { return x.d.open(context.Background(), dsn) }

// drvContext carries driver.DriverContext (CapDriverContext).
type drvContext struct{ d *drv }

func (x drvContext) OpenConnector(dsn string) (driver.Connector, error) {
	if err := x.d.d.cfg.caps.Check(); err != nil {
		return nil, err
	}
	return x.d.d.connector(dsn), nil
}
