package redisbus

import (
	"time"

	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap/bus"
)

// An entry is one queued message, encoded when queued (the caller keeps
// its Keys).
type entry struct {
	origin  string
	seq     uint64
	db      string
	whole   bool // names the whole database
	payload []byte
}

// An outbox is the bounded queue between Publish and the sender.
type outbox struct {
	size int
	wake chan struct{} // capacity 1: something was queued, or the outbox closed

	mu     sync.Mutex
	q      []entry // protected by mu: oldest first
	closed bool    // protected by mu: put fails
}

func newOutbox(size int) *outbox {
	return &outbox{size: size, wake: make(chan struct{}, 1)}
}

// put queues msgs, widening the queue if it overflows; it returns how many
// messages widening replaced.
func (o *outbox) put(msgs []bus.Message) (widened int, err error) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return 0, ErrClosed
	}
	for _, m := range msgs {
		o.q = append(o.q, entry{origin: m.Origin, seq: m.Seq, db: m.DB, whole: m.Whole(), payload: m.Encode()})
	}
	if len(o.q) > o.size {
		widened = o.widen()
	}
	o.mu.Unlock()
	o.signal()
	return widened, nil
}

// putBack puts a batch that could not be sent back at the head of the
// queue, widening the queue if it overflows.
func (o *outbox) putBack(batch []entry) (widened int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.q = append(batch[:len(batch):len(batch)], o.q...)
	if len(o.q) > o.size {
		widened = o.widen()
	}
	return widened
}

// widen replaces the queued messages of each database that has several by
// one for the whole database, at the place of its newest message and with
// its origin and sequence number; it returns how many messages it removed.
// o.mu is held.
func (o *outbox) widen() int {
	newest := make(map[string]int, 4) // database → index of its newest entry
	count := make(map[string]int, 4)
	for i, e := range o.q {
		newest[e.db] = i
		count[e.db]++
	}
	q := make([]entry, 0, len(newest))
	for i, e := range o.q {
		if newest[e.db] != i {
			continue
		}
		if count[e.db] > 1 && !e.whole {
			m := bus.Message{Origin: e.origin, Seq: e.seq, DB: e.db}
			e = entry{origin: e.origin, seq: e.seq, db: e.db, whole: true, payload: m.Encode()}
		}
		q = append(q, e)
	}
	removed := len(o.q) - len(q)
	clear(o.q) // let the payloads go
	o.q = q
	return removed
}

// take removes and returns up to n messages from the head of the queue.
func (o *outbox) take(n int) []entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	n = min(n, len(o.q))
	if n == 0 {
		return nil
	}
	batch := make([]entry, n)
	copy(batch, o.q)
	clear(o.q[:n])
	o.q = o.q[n:]
	if len(o.q) == 0 {
		o.q = nil // release the backing array
	}
	return batch
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.q)
}

// close makes put fail from now on and wakes the sender.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// send is the sender: it publishes what is queued, in order, until the
// outbox is closed and empty, or Close stops everything.
func (b *Bus) send() {
	defer close(b.senderDone)
	failures := 0
	for {
		batch := b.out.take(maxBatch)
		if len(batch) == 0 {
			if b.out.isClosed() {
				return
			}
			select {
			case <-b.out.wake:
			case <-b.ctx.Done():
				return
			}
			continue
		}
		err := b.publish(batch)
		if err == nil {
			if failures > 0 {
				b.log().Info("redisbus: publishing again", slog.Int("failures", failures))
			}
			failures = 0
			continue
		}
		failures++
		b.sendFailures.Add(1)
		if widened := b.out.putBack(batch); widened > 0 {
			b.log().Warn("redisbus: outbox full; queued messages widened to whole databases",
				slog.Int("replaced", widened))
		}
		if b.ctx.Err() != nil {
			return
		}
		if failures == 1 || failures%20 == 0 {
			b.log().Warn("redisbus: publishing failed; retrying",
				slog.Any("error", b.errorf(err, "publishing on channel %q", b.channel)),
				slog.Int("failures", failures), slog.Int("queued", b.out.len()))
		}
		if !b.retryWait(retryBackoff(failures)) {
			return
		}
	}
}

// retryBackoff is the wait after the n-th failure in a row (a variable for
// the tests).
var retryBackoff = backoff

// retryWait waits d before the next attempt to publish, or less: a message
// queued meanwhile is retried minBackoff after it came, so that what is
// committed once the server is back is not held by the backoff that the
// earlier failures grew. It reports whether the bus is still running.
func (b *Bus) retryWait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.out.wake:
		return b.sleep(min(d, minBackoff))
	case <-b.ctx.Done():
		return false
	}
}

// publish PUBLISHes batch, in one pipeline.
func (b *Bus) publish(batch []entry) error {
	ctx := b.ctx
	if len(batch) == 1 {
		return b.client.Publish(ctx, b.channel, bus.Sign(batch[0].payload, b.key)).Err()
	}
	_, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range batch {
			p.Publish(ctx, b.channel, bus.Sign(e.payload, b.key))
		}
		return nil
	})
	return err
}
