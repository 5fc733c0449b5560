package fakedb

import (
	"context"
	"sync"
)

// A Pause holds the driver at one point until the test lets it go on, so
// that an interleaving of goroutines can be made to happen on purpose,
// without sleeps:
//
//	p := fakedb.NewPause()
//	defer p.Release()
//	// In the Handler: return &fakedb.Result{…, BeforeRow: p.AtRow(2)}, nil
//	go read()     // returns row 1, then stops before row 2
//	<-p.Reached() // the reader is now inside rows.Next
//	write()       // runs while the read is half done
//	p.Release()   // the reader goes on
//
// A Pause is used once: after Release, every Wait returns at once. Its
// methods are safe for concurrent use.
type Pause struct {
	reached     chan struct{} // closed by the first Wait
	released    chan struct{} // closed by the first Release
	reachOnce   sync.Once
	releaseOnce sync.Once
}

// NewPause returns a Pause that is not reached and not released.
func NewPause() *Pause {
	return &Pause{reached: make(chan struct{}), released: make(chan struct{})}
}

// Wait marks the Pause reached, then blocks until Release is called or ctx
// is done; it returns ctx.Err() in the second case. Call it from a Handler
// (passing its ctx) to hold a statement, a commit, a connect, ….
func (p *Pause) Wait(ctx context.Context) error {
	p.reachOnce.Do(func() { close(p.reached) })
	select {
	case <-p.released:
		return nil
	default:
	}
	select {
	case <-p.released:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reached returns a channel that is closed once Wait has been called.
func (p *Pause) Reached() <-chan struct{} { return p.reached }

// Release lets every current and later Wait return. It may be called more
// than once (for example again in a deferred call).
func (p *Pause) Release() { p.releaseOnce.Do(func() { close(p.released) }) }

// AtRow returns a hook for Result.BeforeRow that waits on p before row n
// (n = len(Rows)+1 pauses before the end of the rows).
func (p *Pause) AtRow(n int) func(int) {
	return func(i int) {
		if i == n {
			p.Wait(context.Background())
		}
	}
}
