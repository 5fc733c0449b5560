package bus

import (
	"context"
	"errors"
	"sync"
)

// Loopback is an in-process bus, for tests: what is published is delivered
// to every subscriber, in order, from one goroutine per subscriber. Cut and
// Restore simulate a lost and a resumed subscription.
type Loopback struct {
	mu     sync.Mutex
	subs   []*loopSub // protected by mu
	cut    bool       // protected by mu: deliveries are dropped
	closed bool       // protected by mu
	sent   []Message  // protected by mu: every message published, for tests
	// stalled: deliveries are held, in order, until Unstall (protected by mu)
	stalled bool
}

type loopSub struct {
	h    Handler
	ch   chan func()
	done chan struct{}
	held []func() // protected by the Loopback's mu: deliveries held by Stall
}

// NewLoopback returns a Loopback bus.
func NewLoopback() *Loopback { return &Loopback{} }

// ErrClosed is returned by a closed bus.
var ErrClosed = errors.New("bus: closed")

// Publish delivers msgs to every subscriber, unless the bus is cut.
func (l *Loopback) Publish(_ context.Context, msgs []Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.sent = append(l.sent, msgs...)
	if l.cut {
		return nil
	}
	for _, s := range l.subs {
		for _, m := range msgs {
			l.send(s, func() {
				if s.h.Message != nil {
					s.h.Message(m)
				}
			})
		}
	}
	return nil
}

// send delivers f to s, or holds it while the bus is stalled. l.mu is held.
func (l *Loopback) send(s *loopSub, f func()) {
	if l.stalled {
		s.held = append(s.held, f)
		return
	}
	s.deliver(f)
}

// Stall holds every delivery (messages, probes) from now on, in order,
// without reporting anything: a network that silently stops forwarding.
func (l *Loopback) Stall() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stalled = true
}

// Unstall delivers what Stall held, in order, and ends the stall.
func (l *Loopback) Unstall() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stalled {
		return
	}
	l.stalled = false
	for _, s := range l.subs {
		for _, f := range s.held {
			s.deliver(f)
		}
		s.held = nil
	}
}

// Proving returns l as a Prover: its probes come back to l's
// subscribers in order with the messages (unless cut; held while
// stalled). Subscribe through the returned bus, or through l: it is the
// same bus.
func (l *Loopback) Proving() *ProvingLoopback { return &ProvingLoopback{l} }

// ProvingLoopback is a Loopback that proves delivery (bus.Prover).
type ProvingLoopback struct{ *Loopback }

var _ Prover = (*ProvingLoopback)(nil)

// Probe sends token to every subscriber's Handler.Probe, after what was
// published before it.
func (p *ProvingLoopback) Probe(_ context.Context, token uint64) error {
	l := p.Loopback
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.cut {
		return nil
	}
	for _, s := range l.subs {
		l.send(s, func() {
			if s.h.Probe != nil {
				s.h.Probe(token)
			}
		})
	}
	return nil
}

// Subscribe adds a subscriber; it is reported Gap{Resumed: true} at once,
// unless the bus is cut.
func (l *Loopback) Subscribe(h Handler) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	s := &loopSub{h: h, ch: make(chan func(), 1024), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for f := range s.ch {
			f()
		}
	}()
	l.subs = append(l.subs, s)
	if !l.cut {
		s.gap(Gap{Resumed: true})
	}
	return nil
}

func (s *loopSub) deliver(f func()) { s.ch <- f }

func (s *loopSub) gap(g Gap) {
	s.deliver(func() {
		if s.h.Gap != nil {
			s.h.Gap(g)
		}
	})
}

// Cut drops every message from now on and reports the loss to every
// subscriber.
func (l *Loopback) Cut(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut || l.closed {
		return
	}
	l.cut = true
	for _, s := range l.subs {
		s.held = nil // what a stall held is lost with the subscription
		s.gap(Gap{Err: err})
	}
}

// Restore ends a Cut: subscribers are reported Gap{Resumed: true} and
// receive messages again. Messages published while cut are lost.
func (l *Loopback) Restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.cut || l.closed {
		return
	}
	l.cut = false
	for _, s := range l.subs {
		s.gap(Gap{Resumed: true})
	}
}

// Sync waits until every subscriber has handled what was delivered before
// the call.
func (l *Loopback) Sync() {
	l.mu.Lock()
	var waits []chan struct{}
	for _, s := range l.subs {
		w := make(chan struct{})
		s.deliver(func() { close(w) })
		waits = append(waits, w)
	}
	l.mu.Unlock()
	for _, w := range waits {
		<-w
	}
}

// Sent returns every message published so far, cut or not.
func (l *Loopback) Sent() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Message(nil), l.sent...)
}

// Close stops every subscriber's delivery; subscribers that were listening
// are told first that they no longer are (a Gap with ErrClosed), since
// messages published from then on are lost to them. It returns once every
// subscriber's handler has returned.
func (l *Loopback) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	subs := l.subs
	for _, s := range subs {
		if !l.cut {
			s.gap(Gap{Err: ErrClosed})
		}
		close(s.ch)
	}
	l.mu.Unlock()
	for _, s := range subs {
		<-s.done
	}
	return nil
}
