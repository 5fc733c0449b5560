// Package busadapter holds what the bus adapters (bus/pgbus, bus/redisbus,
// bus/pgfeed) share: where they log, the name of their probe channel, the
// wait between two attempts, and the rule of their options: a value
// outside an option's range is an error that names the adapter and the
// option (OptionError), never a silent default.
package busadapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-idmap/idmap/bus"
)

// A Logger is where an adapter logs: the logger of its Logger option, or,
// without one, where the first database attached to it with a logger logs
// (bus.Attacher). Records carry the bus's channel. Init it before use.
type Logger struct {
	p       atomic.Pointer[slog.Logger]
	own     bool // the Logger option was given: Attach keeps it
	channel string
	once    sync.Once
}

// Init sets the logger: l, the logger of the adapter's Logger option,
// which Attach then keeps, or nil (none given: log nothing until Attach).
// Records carry channel.
func (lg *Logger) Init(l *slog.Logger, channel string) {
	lg.own, lg.channel = l != nil, channel
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	lg.p.Store(l.With(slog.String("channel", channel)))
}

// Load returns the logger.
func (lg *Logger) Load() *slog.Logger { return lg.p.Load() }

// Attach logs where a's database logs, unless the adapter has a logger of
// its own or one was attached before.
func (lg *Logger) Attach(a bus.Attachment) {
	if lg.own || a.Logger == nil {
		return
	}
	lg.once.Do(func() { lg.p.Store(a.Logger.With(slog.String("channel", lg.channel))) })
}

// ProbeChannel returns a name for a bus's probe channel:
// bus.ProbeChannelPrefix, then an id of the bus's own (RandomID).
func ProbeChannel() string { return bus.ProbeChannelPrefix + RandomID() }

// RandomID returns 16 random hex digits.
func RandomID() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// Sleep waits for d, or until ctx is done (then it returns false).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// The adapters' options follow one rule: an option given a value outside
// its range (a size or an interval that is not positive, an empty name, a
// nil configuration, a short key) makes New return an error that names
// the adapter and the option; no value of an option stands for its
// default (leave the option out for that), unless the option's doc gives
// that value a meaning of its own (redisbus.DrainTimeout(0), a nil
// Logger).

// OptionCheck records the first error of an adapter's options: each
// adapter's option struct embeds it, and New returns Err.
type OptionCheck struct {
	Err error // the first option given a value outside its range
}

// Fail records err, unless an earlier option failed.
func (c *OptionCheck) Fail(err error) {
	if c.Err == nil {
		c.Err = err
	}
}

// Check records err as Fail does when it is not nil, and reports whether
// it is nil (the option's value is in range and may be set).
func (c *OptionCheck) Check(err error) bool {
	if err != nil {
		c.Fail(err)
		return false
	}
	return true
}

// OptionError returns the error of option of adapter pkg ("pgbus",
// "redisbus", "pgfeed"): "pkg: option: " and the formatted text.
func OptionError(pkg, option, format string, args ...any) error {
	return fmt.Errorf(pkg+": "+option+": "+format, args...)
}

// PositiveSize checks the size or count n given to option: nil if n > 0.
func PositiveSize(pkg, option string, n int) error {
	if n > 0 {
		return nil
	}
	return OptionError(pkg, option, "%d is not a positive size", n)
}

// PositiveInterval checks the interval or timeout d given to option: nil
// if d > 0.
func PositiveInterval(pkg, option string, d time.Duration) error {
	if d > 0 {
		return nil
	}
	return OptionError(pkg, option, "%v is not a positive duration", d)
}

// BackoffBounds checks the bounds given to option Backoff: nil if
// 0 < min <= max.
func BackoffBounds(pkg string, min, max time.Duration) error {
	if min > 0 && max >= min {
		return nil
	}
	return OptionError(pkg, "Backoff", "bounds %v, %v are not 0 < min <= max", min, max)
}

// KeyLength checks the key given to option Key: nil if it is at least 16
// bytes long.
func KeyLength(pkg string, key []byte) error {
	if len(key) >= 16 {
		return nil
	}
	return OptionError(pkg, "Key", "%d bytes is too short a key (at least 16)", len(key))
}

// ApplicationName checks the name given to option ApplicationName (a
// PostgreSQL application_name): nil if it is not empty and holds no NUL
// byte.
func ApplicationName(pkg, name string) error {
	if name != "" && strings.IndexByte(name, 0) < 0 {
		return nil
	}
	return OptionError(pkg, "ApplicationName", "%q is not an application name (empty, or with a NUL byte)", name)
}
