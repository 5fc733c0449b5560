package fakedb

import (
	"context"
	"database/sql/driver"
	"fmt"
)

var _ driver.Tx = (*tx)(nil)

// tx is the driver.Tx value. Commit and Rollback reach the Handler
// (KindCommit, KindRollback); the transaction is over after either, even
// when the Handler fails it, as database/sql assumes.
type tx struct {
	c    *conn
	done bool // Commit or Rollback was called
}

func (t *tx) Commit() error   { return t.end(KindCommit) }
func (t *tx) Rollback() error { return t.end(KindRollback) }

func (t *tx) end(k Kind) error {
	if t.done {
		return fmt.Errorf("fakedb: conn %d: %v of a transaction already ended", t.c.id, k)
	}
	_, err := t.c.call(context.Background(), &Query{Kind: k})
	t.done = true
	t.c.inTx = false
	t.c.d.count(func(s *Stats) { s.OpenTxs-- })
	return err
}
