package pgbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/go-idmap/idmap/bus"
)

// Subscribe starts a goroutine that listens on the bus's channel, on a
// connection of its own, and returns without waiting for the server. It
// reports h.Gap(bus.Gap{Resumed: true}) once LISTEN succeeded, then calls
// h.Message for each message, in the order PostgreSQL delivers them
// (payloads over MaxMessageSize, without a valid tag when the bus has a
// Key, or that are not messages are dropped, counted and logged). Every
// Heartbeat without a notification it pings the server; when the
// connection fails, is closed by the server or stalls, it reports
// h.Gap(bus.Gap{Err: err}) once, reconnects with backoff, listens again and
// reports h.Gap(bus.Gap{Resumed: true}). Close reports a last
// h.Gap(bus.Gap{Err: ErrClosed}) if the subscription was listening. h's
// functions are called from that one goroutine until Close returns. Each
// call to Subscribe listens on its own connection.
func (b *Bus) Subscribe(h bus.Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.wg.Add(1)
	go b.listen(h)
	return nil
}

// listen is a subscription's goroutine.
func (b *Bus) listen(h bus.Handler) {
	defer b.wg.Done()
	ctx := b.listenCtx
	backoff := b.o.minBackoff
	failures := 0      // attempts to listen that failed in a row
	listening := false // h was told Resumed, and not told of a loss since
	defer func() {
		if listening && h.Gap != nil {
			// Closed: what is published from now on does not reach h.
			h.Gap(bus.Gap{Err: ErrClosed})
		}
	}()
	for {
		conn, err := b.connect(ctx, true)
		if err == nil {
			err = b.listenOn(ctx, conn)
			if err != nil {
				closeConn(conn)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			level := slog.LevelWarn
			if failures > 1 {
				level = slog.LevelDebug // the first failure of a series was logged
			}
			b.log.Log(ctx, level, "pgbus: cannot listen; retrying", "in", backoff, "failures", failures, "err", err.Error())
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, b.o.maxBackoff)
			continue
		}
		if ctx.Err() != nil {
			closeConn(conn)
			return
		}

		b.log.Info("pgbus: listening", "pid", conn.PgConn().PID(), "failures", failures)
		failures = 0
		if h.Gap != nil {
			h.Gap(bus.Gap{Resumed: true})
		}
		listening = true
		up := time.Now()
		err = b.receive(ctx, conn, h)
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		err = newError("subscription lost", err, b.secrets...)
		b.log.Warn("pgbus: subscription lost; reconnecting", "err", err.Error())
		listening = false
		if h.Gap != nil {
			h.Gap(bus.Gap{Err: err})
		}
		// A connection that stayed up for a while starts the backoff
		// over; one that keeps failing at once does not.
		if time.Since(up) >= b.o.maxBackoff+b.o.heartbeat {
			backoff = b.o.minBackoff
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, b.o.maxBackoff)
	}
}

// listenOn executes LISTEN on conn.
func (b *Bus) listenOn(ctx context.Context, conn *pgx.Conn) error {
	lctx, cancel := context.WithTimeout(ctx, b.connectTimeout())
	defer cancel()
	if _, err := conn.Exec(lctx, "LISTEN "+pgx.Identifier{b.o.channel}.Sanitize()); err != nil {
		return newError("LISTEN", err, b.secrets...)
	}
	return nil
}

// receive delivers what conn receives to h until the connection fails or
// ctx is done, and returns why.
func (b *Bus) receive(ctx context.Context, conn *pgx.Conn, h bus.Handler) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, b.o.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if n != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.deliver(n, h)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !timedOut || conn.IsClosed() || !(pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded)) {
			return err
		}
		// Nothing for a heartbeat: check that the server still answers.
		pctx, cancel := context.WithTimeout(ctx, b.o.pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("heartbeat: no answer within %v: %w", b.o.pingTimeout, err)
		}
	}
}

// deliver decodes n and hands it to h, or skips it.
func (b *Bus) deliver(n *pgconn.Notification, h bus.Handler) {
	if n.Channel != b.o.channel {
		return
	}
	m, err := bus.Open(n.Payload, b.o.key, b.o.maxSize)
	if err != nil {
		if b.drops.Add(err) {
			d := b.drops.Load()
			b.log.Warn("pgbus: dropped a payload that is not an idmap message (only some drops are logged)",
				"from_pid", n.PID, "bytes", len(n.Payload), "err", "pgbus: "+err.Error(),
				"too_large", d.TooLarge, "unauthenticated", d.Unauthenticated, "malformed", d.Malformed)
		}
		return
	}
	if h.Message != nil {
		h.Message(m)
	}
}
