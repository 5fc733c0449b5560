package fakedb

import (
	"context"
	"database/sql/driver"
	"io"
)

var (
	_ driver.Connector = (*connector)(nil)
	_ io.Closer        = connectorCloser{}
)

// connector is the base driver.Connector value: every Connect opens a new
// connection with its DSN.
type connector struct {
	d   *Driver
	dsn string
}

// connector returns a connector for dsn, dressed in the Driver's caps.
func (d *Driver) connector(dsn string) driver.Connector {
	return pickConnector(&connector{d: d, dsn: dsn}, d.cfg.caps)
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) { return c.d.open(ctx, c.dsn) }

func (c *connector) Driver() driver.Driver { return c.d.drv }

// connectorCloser carries io.Closer (CapConnectorCloser); sql.DB.Close calls
// it. Each call is counted in Stats.ConnectorsClosed.
type connectorCloser struct{ c *connector }

func (x connectorCloser) Close() error {
	x.c.d.count(func(s *Stats) { s.ConnectorsClosed++ })
	return nil
}
