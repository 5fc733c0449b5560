package idmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/cache"
	"github.com/go-idmap/idmap/signals"
)

// Ready reports whether db serves from its maps: it has no bus, or its bus
// listens and (for a bus that proves delivery) its lease is valid. It is
// false for a database not opened through idmap. It is cheap: an atomic
// load and a clock read.
func Ready(db *sql.DB) bool {
	d := databaseOf(db)
	return d != nil && ready(d.cdb)
}

func ready(d *cache.DB) bool { return !d.Paused() && d.LeaseValid() }

// WaitReady waits until db is Ready, or ctx is done: then it returns an
// error that wraps ctx's and says what is missing. Until then, every Get
// of the database queries and its shared maps store nothing (see WithBus).
// signals.Bus reports each change as it happens.
func WaitReady(ctx context.Context, db *sql.DB) error {
	d := databaseOf(db)
	if d == nil {
		return errors.New("idmap: WaitReady: not a database opened through idmap")
	}
	st := stateOf(d.cdb)
	for {
		ch := st.changes()
		if ready(d.cdb) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			why := "its bus does not listen"
			if !d.cdb.Paused() {
				why = "its bus proved no delivery within its lease"
				if p := st.lastProof.Load(); p > 0 {
					why += fmt.Sprintf(" (last proof %v ago)", time.Duration(cache.Mono()-p).Round(time.Millisecond))
				}
			}
			return fmt.Errorf("idmap: WaitReady: database %q is not ready: %s: %w", d.name, why, ctx.Err())
		}
	}
}

// busState is what idmap knows of one database's bus: its lease, its
// readiness, and the counters of Stats.Bus.
type busState struct {
	d *cache.DB

	mu    sync.Mutex
	lease time.Duration // protected by mu: the smallest Lease asked for; 0: DefaultLease
	// proofs holds, for each proving subscription of the database, the
	// Mono() time its newest proof's probe was sent; -1: none since the
	// subscription was made or last lost. Protected by mu.
	proofs map[*subscription]int64
	// lapsed: the lease ran out, and LeaseRenewed has not been sent since.
	// silent: it ran out by a gap or at the start (no LeaseExpired is
	// sent or counted for it). Protected by mu.
	lapsed, silent bool
	changed        chan struct{} // protected by mu: closed (and replaced) when readiness may have changed

	lastProof                   atomic.Int64 // Mono() send time of the newest proof; 0: none yet
	publishedKeys, receivedKeys atomic.Uint64
	leaseExpiries, probes       atomic.Uint64
	lost, closed                atomic.Uint64 // gaps by cause
}

var busStates sync.Map // *cache.DB → *busState

// stateOf returns d's bus state, making it on first use.
func stateOf(d *cache.DB) *busState {
	if st, ok := busStates.Load(d); ok {
		return st.(*busState)
	}
	st, _ := busStates.LoadOrStore(d, &busState{d: d, proofs: map[*subscription]int64{}, changed: make(chan struct{})})
	return st.(*busState)
}

// loadState returns d's bus state, or nil if it has none.
func loadState(d *cache.DB) *busState {
	if st, ok := busStates.Load(d); ok {
		return st.(*busState)
	}
	return nil
}

// changes returns a channel that is closed at the next change.
func (st *busState) changes() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.changed
}

// notifyLocked wakes WaitReady. st.mu is held.
func (st *busState) notifyLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

func (st *busState) notify() {
	st.mu.Lock()
	st.notifyLocked()
	st.mu.Unlock()
}

// leaseLocked returns the database's lease. st.mu is held.
func (st *busState) leaseLocked() time.Duration {
	if st.lease == 0 {
		return DefaultLease
	}
	return st.lease
}

func (st *busState) leaseDuration() time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.leaseLocked()
}

// setLease asks for a lease of l (0: the default); the smallest holds.
func (st *busState) setLease(l time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if l > 0 && (st.lease == 0 || l < st.lease) {
		st.lease = l
		st.d.SetLease(st.deadlineLocked())
	}
}

// deadlineLocked returns the database's lease deadline from its proofs:
// the earliest of its proving subscriptions' (1, long past, for one with
// no proof); 0 when no subscription proves delivery. st.mu is held.
func (st *busState) deadlineLocked() int64 {
	if len(st.proofs) == 0 {
		return 0
	}
	dl := int64(math.MaxInt64)
	for _, p := range st.proofs {
		x := int64(1)
		if p >= 0 {
			x = p + int64(st.leaseLocked())
		}
		dl = min(dl, x)
	}
	return dl
}

// addProver makes s's proofs hold the database's lease; until its first
// proof (or the subscription's resumption) nothing is served.
func (st *busState) addProver(s *subscription) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.proofs[s] = -1
	st.lapseSilently()
}

// lapseSilently ends the lease without a LeaseExpired: at the start, and
// at a gap (which has its own event). st.mu is held.
func (st *busState) lapseSilently() {
	st.d.SetLease(st.deadlineLocked())
	if !st.lapsed {
		st.lapsed, st.silent = true, true
	}
}

// removeProver forgets s.
func (st *busState) removeProver(s *subscription) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.proofs[s]; !ok {
		return
	}
	delete(st.proofs, s)
	dl := st.deadlineLocked()
	if now, prev := cache.Mono(), st.d.Lease(); prev != 0 && now >= prev && (dl == 0 || now < dl) {
		st.d.ExpireAll() // serving again: what was loaded meanwhile may have missed a write
	}
	st.d.SetLease(dl)
	if dl == 0 {
		st.lapsed, st.silent = false, false
	}
	st.notifyLocked()
}

// lostProofs ends s's proofs at a gap.
func (st *busState) lostProofs(s *subscription) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.proofs[s]; !ok {
		return
	}
	st.proofs[s] = -1
	st.lapseSilently()
	st.notifyLocked()
}

// proved records a proof of s whose probe was sent at sent (Mono()). If
// the lease had run out and this proof renews it, everything loaded
// before is expired first (a message could have been missed: a bus that
// lost messages without reporting a gap), then the new deadline is
// stored: a lookup that sees the new deadline sees the expiry too.
func (st *busState) proved(s *subscription, sent int64) {
	var events []signals.BusEvent
	st.mu.Lock()
	old, ok := st.proofs[s]
	if !ok || sent <= old {
		st.mu.Unlock()
		return
	}
	st.proofs[s] = sent
	prevProof := st.lastProof.Load()
	if sent > prevProof {
		st.lastProof.Store(sent)
	}
	prev := st.d.Lease()
	dl := st.deadlineLocked()
	now := cache.Mono()
	if prev != 0 && now >= prev && now < dl {
		st.d.ExpireAll()
		st.d.SetLease(dl)
		since := time.Duration(now - sent)
		if !st.lapsed { // it ran out before the prober noticed
			st.leaseExpiries.Add(1)
			events = append(events, signals.BusEvent{DB: st.d.Name(), Kind: signals.LeaseExpired, SinceProof: time.Duration(now - prevProof)})
		}
		st.lapsed, st.silent = false, false
		events = append(events, signals.BusEvent{DB: st.d.Name(), Kind: signals.LeaseRenewed, SinceProof: since})
		st.notifyLocked()
	} else {
		st.d.SetLease(dl)
	}
	st.mu.Unlock()
	for _, e := range events {
		signals.Bus.Send(e)
		logDebug(st.d, "idmap: bus "+e.Kind.String(), "since_proof", e.SinceProof)
	}
}

// checkLapse reports a lease that ran out (the maps stopped serving at the
// deadline; this only tells).
func (st *busState) checkLapse() {
	st.mu.Lock()
	dl := st.d.Lease()
	now := cache.Mono()
	if dl == 0 || now < dl || st.lapsed || st.d.Paused() {
		st.mu.Unlock()
		return
	}
	st.lapsed, st.silent = true, false
	st.leaseExpiries.Add(1)
	since := time.Duration(-1)
	if p := st.lastProof.Load(); p > 0 {
		since = time.Duration(now - p)
	}
	st.notifyLocked()
	st.mu.Unlock()
	signals.Bus.Send(signals.BusEvent{DB: st.d.Name(), Kind: signals.LeaseExpired, SinceProof: since})
	logWarn(st.d, "idmap: bus lease expired: no proof of delivery; serving nothing until one comes", "since_proof", since)
}

// The prober of a subscription whose bus proves delivery.

// probeRing is how many probes in flight a subscription remembers: a probe
// that comes back after probeRing newer ones were sent proves nothing.
const probeRing = 32

// probes are a subscription's probes in flight. Tokens are random, so that
// whoever can publish on the bus's probe channel (Redis lists channels to
// anyone) cannot send a token before the bus does, and a token that comes
// back twice proves nothing more the second time.
type probes struct {
	mu        sync.Mutex
	n         uint64 // protected by mu: probes sent
	validFrom int64  // protected by mu: probes sent before this (Mono()) prove nothing (a gap came since)
	sent      [probeRing]struct {
		token uint64
		at    int64
	} // protected by mu
}

// newToken returns a token and records when it is sent.
func (p *probes) newToken() uint64 {
	token := rand.Uint64() | 1 // never 0, the empty slot
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	e := &p.sent[p.n%probeRing]
	e.token, e.at = token, cache.Mono()
	return token
}

// sentAt returns when token was sent, if it still proves something.
func (p *probes) sentAt(token uint64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.sent {
		if e.token == token && token != 0 {
			return e.at, e.at >= p.validFrom
		}
	}
	return 0, false
}

// invalidate makes the probes sent until now prove nothing.
func (p *probes) invalidate() {
	p.mu.Lock()
	p.validFrom = cache.Mono()
	p.mu.Unlock()
}

// probe is the handler of a probe that came back.
func (s *subscription) probe(token uint64) {
	at, ok := s.probes.sentAt(token)
	if !ok {
		return
	}
	for _, d := range s.databases() {
		stateOf(d).proved(s, at)
	}
}

// runProber probes s's bus every quarter of the smallest lease of its
// databases (at once when kicked), until stop is closed. A probe that
// blocks (a bus whose connection stalls) does not hold up the next check
// of the lease: at most one probe is in flight, the others are skipped.
func (s *subscription) runProber(pr bus.Prover, stop <-chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	var inFlight atomic.Bool
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		dbs := s.databases()
		lease := DefaultLease
		for i, d := range dbs {
			if l := stateOf(d).leaseDuration(); i == 0 || l < lease {
				lease = l
			}
		}
		if inFlight.CompareAndSwap(false, true) {
			token := s.probes.newToken()
			for _, d := range dbs {
				stateOf(d).probes.Add(1)
			}
			go func() {
				defer inFlight.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), lease)
				defer cancel()
				if err := pr.Probe(ctx, token); err != nil && !errors.Is(err, bus.ErrClosed) {
					for _, d := range dbs {
						logDebug(d, "idmap: probing the bus failed", "error", err)
					}
				}
			}()
		}
		for _, d := range dbs {
			stateOf(d).checkLapse()
		}
		t.Reset(lease / 4)
	}
}
