// Package signals carries idmap's notifications, in the manner of Django's
// signals: PreFlush and PostFlush are sent around every flush of an identity
// map (but not around FlushInstance); Bus reports what happens to a
// database's bus (idmap.WithBus): a lost subscription, a resumption, a
// lease that expired or was renewed.
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
	"time"
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

// BusEventKind says what happened to a database's bus (idmap.WithBus).
type BusEventKind int

const (
	// BusListening: the subscription listens, the first time or again
	// after BusLost. The database's maps were expired (what was loaded
	// while deaf may have missed a write). For a bus that proves delivery
	// (bus.Prover), the resumption starts a lease: LeaseRenewed follows.
	BusListening BusEventKind = iota
	// BusLost: the subscription was lost (Err says why, when known):
	// messages may be missed from now on. Nothing of the database is served
	// from its maps until BusListening.
	BusLost
	// LeaseExpired: the bus proved no delivery for the database's lease
	// (idmap.Lease): from the moment the lease ran out, nothing of the
	// database was served from its maps. The event itself is sent by a
	// timer, up to a quarter of the lease late; the maps stopped serving
	// at the deadline, whatever the timer did.
	LeaseExpired
	// LeaseRenewed: a proof of delivery came back after the lease had
	// expired, or the subscription listens again (after BusListening):
	// the maps were expired, and serve again.
	LeaseRenewed
)

// String returns the kind's name: "listening", "lost", "lease expired",
// "lease renewed".
func (k BusEventKind) String() string {
	switch k {
	case BusListening:
		return "listening"
	case BusLost:
		return "lost"
	case LeaseExpired:
		return "lease expired"
	case LeaseRenewed:
		return "lease renewed"
	}
	return "unknown"
}

// BusEvent is a change in the state of one database's bus.
type BusEvent struct {
	DB   string       // the database's name
	Kind BusEventKind // what happened
	Err  error        // BusLost: why, when known
	// SinceProof is the time since the last proof of delivery, for
	// LeaseExpired and LeaseRenewed (0 for a bus that proves nothing).
	SinceProof time.Duration
}

// Bus is sent at each BusEvent, from the goroutine of the bus's
// subscription (or of idmap's prober, for LeaseExpired). Receivers must
// return quickly: they hold up the bus's deliveries.
var Bus Signal[BusEvent]

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
