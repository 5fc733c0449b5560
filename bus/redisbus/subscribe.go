package redisbus

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap/bus"
)

// A subscriber is one Subscribe: a loop that subscribes on a dedicated
// connection, reads it with PubSub.Receive (never PubSub.Channel, which
// reconnects silently and drops messages when its buffer is full), and
// starts over after a loss.
type subscriber struct {
	b *Bus
	h bus.Handler

	mu      sync.Mutex
	ps      *redis.PubSub // protected by mu: the current connection, or nil
	stopped bool          // protected by mu
}

// run is the subscriber's goroutine; every call of the handler comes from
// it.
func (s *subscriber) run() {
	defer s.b.wg.Done()
	b := s.b
	listening := false // the handler last heard Gap{Resumed: true}
	failures := 0      // consecutive attempts that ended before or soon after listening
	for {
		// Subscribe dials and sends SUBSCRIBE; its error, if any, comes
		// back from the first Receive.
		ps := b.subClient.Subscribe(b.ctx, b.channel, b.probeChan)
		if !s.setConn(ps) {
			_ = ps.Close()
			return
		}
		hb := s.startHeartbeat(ps)
		err := s.receive(ps, hb, &listening, &failures)
		close(hb.quit) // before closing ps: a PING failing now is no failure of the heartbeat
		s.setConn(nil)
		_ = ps.Close()
		<-hb.done
		if s.isStopped() {
			if listening {
				// No invalidation comes any more: idmap must stop serving
				// from the maps of the databases that still use the bus.
				s.gap(bus.Gap{Err: ErrClosed})
			}
			return
		}
		if hbErr := hb.failure(); hbErr != nil {
			err = hbErr
		}
		err = b.errorf(err, "subscription to channel %q", b.channel)
		failures++
		if listening {
			listening = false
			b.log().Warn("redisbus: subscription lost; resubscribing", slog.Any("error", err))
			s.gap(bus.Gap{Err: err})
		} else if failures == 1 || failures%20 == 0 {
			b.log().Warn("redisbus: cannot subscribe; retrying", slog.Any("error", err), slog.Int("failures", failures))
		}
		if !b.sleep(backoff(failures)) {
			return
		}
	}
}

// receive reads ps until it fails, delivering what it reads.
func (s *subscriber) receive(ps *redis.PubSub, hb *heartbeat, listening *bool, failures *int) error {
	b := s.b
	for {
		v, err := ps.Receive(b.ctx)
		if err != nil {
			return err
		}
		hb.alive()
		switch m := v.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" || m.Channel != b.channel {
				continue
			}
			if *listening {
				// go-redis made a new connection without an error
				// reaching us (it does, for instance, on a server's
				// maintenance notice): what came in between is lost.
				err := &Error{msg: fmt.Sprintf("redisbus: subscription to channel %q: the connection was replaced", b.channel)}
				b.log().Warn("redisbus: subscription lost and made again", slog.Any("error", err))
				s.gap(bus.Gap{Err: err})
			} else if *failures > 0 {
				b.log().Info("redisbus: subscribed again", slog.Int("failures", *failures))
			}
			*listening = true
			*failures = 0
			s.gap(bus.Gap{Resumed: true})
		case *redis.Message:
			if m.Channel == b.probeChan {
				s.probe(m.Payload)
				continue
			}
			if m.Channel != b.channel {
				continue
			}
			// Open checks the size first: an oversized payload costs
			// no decoding.
			msg, err := bus.Open(m.Payload, b.key, b.maxSize)
			if err != nil {
				b.drops.Log(b.log(), err, "redisbus: dropped a payload that is not an idmap message (only some drops are logged)",
					slog.String("error", "redisbus: "+err.Error()), slog.Int("bytes", len(m.Payload)))
				continue
			}
			if s.h.Message != nil {
				s.h.Message(msg)
			}
		}
	}
}

// probe hands a probe's token to the handler.
func (s *subscriber) probe(payload string) {
	if s.h.Probe == nil {
		return
	}
	if token, err := strconv.ParseUint(payload, 10, 64); err == nil {
		s.h.Probe(token)
	}
}

func (s *subscriber) gap(g bus.Gap) {
	if s.h.Gap != nil {
		s.h.Gap(g)
	}
}

// setConn records the current connection, for stop; it reports false once
// the subscriber is stopped.
func (s *subscriber) setConn(ps *redis.PubSub) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.ps = ps
	return true
}

func (s *subscriber) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// stop ends the subscriber: closing its connection ends a blocked Receive.
// The bus's context is canceled first, which ends a dial or a backoff.
func (s *subscriber) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.ps != nil {
		_ = s.ps.Close()
	}
}

// A heartbeat PINGs a subscription's connection every interval and closes
// it (ending its Receive) when nothing at all arrives for an interval after
// a PING. Anything read counts, not only the PONG: under heavy traffic the
// PONG waits behind the messages sent before it, which prove the
// connection alive as well.
type heartbeat struct {
	signs chan struct{} // capacity 1: something was read
	quit  chan struct{}
	done  chan struct{}

	mu  sync.Mutex
	err error // protected by mu: why the heartbeat closed the connection
}

func (s *subscriber) startHeartbeat(ps *redis.PubSub) *heartbeat {
	hb := &heartbeat{
		signs: make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go hb.run(s.b, ps)
	return hb
}

func (hb *heartbeat) run(b *Bus, ps *redis.PubSub) {
	defer close(hb.done)
	t := time.NewTimer(b.hb)
	defer t.Stop()
	for {
		select {
		case <-hb.quit:
			return
		case <-t.C:
		}
		select { // only what is read after this PING answers it
		case <-hb.signs:
		default:
		}
		if err := ps.Ping(b.ctx); err != nil {
			select {
			case <-hb.quit: // the connection was closed under the PING
			default:
				hb.fail(ps, fmt.Errorf("PING: %w", err))
			}
			return
		}
		// The reply is due an interval after the PING was written (Ping
		// may have had to dial first).
		t.Reset(b.hb)
		select {
		case <-hb.quit:
			return
		case <-hb.signs:
			// The next PING goes when the timer fires, an interval after
			// this one.
		case <-t.C:
			hb.fail(ps, fmt.Errorf("%w within %v", errNoPong, b.hb))
			return
		}
	}
}

var errNoPong = errors.New("nothing received after PING")

func (hb *heartbeat) fail(ps *redis.PubSub, err error) {
	hb.mu.Lock()
	hb.err = err
	hb.mu.Unlock()
	_ = ps.Close()
}

func (hb *heartbeat) failure() error {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.err
}

// alive records that something was read.
func (hb *heartbeat) alive() {
	select {
	case hb.signs <- struct{}{}:
	default:
	}
}
