// Package signals carries idmap's notifications, in the manner of Django's
// signals: PreFlush and PostFlush are sent around every flush of an identity
// map (but not around FlushInstance).
//
//	disconnect := signals.PostFlush.Connect(func(f signals.Flush) {
//		log.Printf("flushed %q (reason %v)", f.DB, f.Reason)
//	})
//	defer disconnect()
//
// Receivers run synchronously, in the order they were connected, on the
// goroutine that flushes. A receiver must not block for long: a flush that
// ends a request or a transaction waits for it.
package signals

import (
	"sync"
	"sync/atomic"
)

// Reason says why a flush happened.
type Reason int

const (
	Manual       Reason = iota // Flush, FlushType
	RequestEnd                 // a Middleware scope ended
	TxEnd                      // a transaction's own scope ended
	SchemaChange               // DDL went through the driver
	BusGap                     // a database's bus lost its subscription, or has it back (idmap.WithBus)
)

// String returns the reason's name, as in "manual" or "schema change".
func (r Reason) String() string {
	switch r {
	case Manual:
		return "manual"
	case RequestEnd:
		return "request end"
	case TxEnd:
		return "transaction end"
	case SchemaChange:
		return "schema change"
	case BusGap:
		return "bus gap"
	}
	return "unknown"
}

// Flush describes one flush of an identity map.
type Flush struct {
	DB     string // database name; "" = every database
	Table  string // "" = every table (FlushType sets it)
	Reason Reason
	Scoped bool // a scope's map (true) or the shared maps (false)
}

// PreFlush is sent before a map is flushed; PostFlush after.
var PreFlush, PostFlush Signal[Flush]

// Signal is a list of receivers of values of type T. The zero value is ready
// to use. Sending takes no lock: receivers connected or disconnected while a
// send is under way may or may not see that send.
type Signal[T any] struct {
	mu   sync.Mutex                     // serialises Connect and disconnect
	recv atomic.Pointer[[]*receiver[T]] // copy on write; read without a lock by Send
}

type receiver[T any] struct{ fn func(T) }

// Connect adds fn to the receivers of s and returns a function that removes
// it again. Calling the returned function more than once is harmless. A nil
// fn is ignored.
func (s *Signal[T]) Connect(fn func(T)) (disconnect func()) {
	if fn == nil {
		return func() {}
	}
	r := &receiver[T]{fn: fn}
	s.mu.Lock()
	old := s.load()
	next := make([]*receiver[T], len(old), len(old)+1)
	copy(next, old)
	next = append(next, r)
	s.recv.Store(&next)
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { s.remove(r) }) }
}

func (s *Signal[T]) remove(r *receiver[T]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.load()
	next := make([]*receiver[T], 0, len(old))
	for _, x := range old {
		if x != r {
			next = append(next, x)
		}
	}
	s.recv.Store(&next)
}

func (s *Signal[T]) load() []*receiver[T] {
	if p := s.recv.Load(); p != nil {
		return *p
	}
	return nil
}

// Send calls every connected receiver with v, in the order they were
// connected.
func (s *Signal[T]) Send(v T) {
	for _, r := range s.load() {
		r.fn(v)
	}
}

// Connected reports how many receivers are connected.
func (s *Signal[T]) Connected() int { return len(s.load()) }
