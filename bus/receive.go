package bus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
)

// DefaultMaxMessageSize is the default bound on a received payload (64
// KiB): far above the largest message Encode writes (MaxPayload, 7,000
// bytes, plus the database's and table's names), far below what would
// stall a subscriber.
const DefaultMaxMessageSize = 64 << 10

// Errors of Open, each the cause of a dropped payload.
var (
	// ErrTooLarge: the payload is longer than the bound.
	ErrTooLarge = errors.New("bus: payload over the size bound")
	// ErrUnauthenticated: a key is set, and the payload has no tag or a
	// tag that does not match it.
	ErrUnauthenticated = errors.New("bus: payload without a valid authentication tag")
)

// tagPrefix begins a signed payload: tagPrefix, the HMAC-SHA256 of the
// payload in unpadded base64url (43 bytes), ":", the payload.
const tagPrefix = "idmap-hmac1:"

const tagLen = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)

// macContext separates idmap's use of the key from any other.
const macContext = "idmap bus message v1\n"

func mac(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macContext))
	h.Write(payload)
	return h.Sum(nil)
}

// Sign returns payload (an encoded message) with an authentication tag,
// the HMAC-SHA256 of the payload under key, in front: what an adapter
// with a key publishes. With an empty key it returns payload unchanged.
// Signed payloads stay text (NOTIFY carries them): the tag adds 56 bytes.
func Sign(payload, key []byte) []byte {
	if len(key) == 0 {
		return payload
	}
	out := make([]byte, 0, len(tagPrefix)+tagLen+1+len(payload))
	out = append(out, tagPrefix...)
	out = base64.RawURLEncoding.AppendEncode(out, mac(key, payload))
	out = append(out, ':')
	return append(out, payload...)
}

// Open reads a received payload: it refuses one longer than maxSize bytes
// (DefaultMaxMessageSize when maxSize ≤ 0) before anything else, then,
// when key is set, one without a valid tag (compared in constant time),
// and decodes the rest. Without a key, a tag is skipped unchecked. Its
// errors wrap ErrTooLarge, ErrUnauthenticated or ErrFormat.
//
// A subscriber accepts only what Open accepts. Anyone who can publish on a
// bus's channel can send it anything: an adapter passes each payload it
// receives to Open, whose errors tell why a payload was dropped
// (DropCounter counts them). What is dropped is only what no instance of idmap sent:
// Encode never writes more than MaxKeys keys, and keeps a message under
// MaxPayload bytes plus the lengths of its database and table names.
func Open(payload string, key []byte, maxSize int) (Message, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	if len(payload) > maxSize {
		return Message{}, fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, len(payload), maxSize)
	}
	body, tagged := strings.CutPrefix(payload, tagPrefix)
	if tagged {
		if len(body) < tagLen+1 || body[tagLen] != ':' {
			if len(key) > 0 {
				return Message{}, fmt.Errorf("%w: a malformed tag", ErrUnauthenticated)
			}
			return Message{}, fmt.Errorf("%w: a malformed tag", ErrFormat)
		}
		tag, rest := body[:tagLen], body[tagLen+1:]
		if len(key) > 0 {
			got, err := base64.RawURLEncoding.DecodeString(tag)
			if err != nil || !hmac.Equal(got, mac(key, []byte(rest))) {
				return Message{}, fmt.Errorf("%w: the tag does not match", ErrUnauthenticated)
			}
		}
		body = rest
	} else if len(key) > 0 {
		return Message{}, fmt.Errorf("%w: no tag", ErrUnauthenticated)
	}
	return Decode([]byte(body))
}

// Drops counts the received payloads that a subscriber dropped, by cause.
type Drops struct {
	TooLarge        uint64 `json:"too_large"`       // longer than the size bound
	Unauthenticated uint64 `json:"unauthenticated"` // no valid tag, with a key set
	Malformed       uint64 `json:"malformed"`       // not a message (ErrFormat)
}

// A DropCounter counts dropped payloads; it is safe for concurrent use.
// The zero value is ready.
type DropCounter struct {
	tooLarge, unauthenticated, malformed atomic.Uint64
}

// Add counts a payload that Open refused with err. It reports whether the
// drop deserves a log record: the first of its cause, then the 2nd, 4th,
// 8th…, so that a flood of bad payloads does not flood the log.
func (c *DropCounter) Add(err error) (logIt bool) {
	var n uint64
	switch {
	case errors.Is(err, ErrTooLarge):
		n = c.tooLarge.Add(1)
	case errors.Is(err, ErrUnauthenticated):
		n = c.unauthenticated.Add(1)
	default:
		n = c.malformed.Add(1)
	}
	return n&(n-1) == 0
}

// Log counts a payload that Open refused with err (Add) and, when the drop
// deserves a log record, logs msg on l at Warn with attrs and the counts
// so far (too_large, unauthenticated, malformed).
func (c *DropCounter) Log(l *slog.Logger, err error, msg string, attrs ...any) {
	if !c.Add(err) {
		return
	}
	d := c.Load()
	l.Warn(msg, append(attrs, slog.Uint64("too_large", d.TooLarge),
		slog.Uint64("unauthenticated", d.Unauthenticated), slog.Uint64("malformed", d.Malformed))...)
}

// Load returns the counts.
func (c *DropCounter) Load() Drops {
	return Drops{TooLarge: c.tooLarge.Load(), Unauthenticated: c.unauthenticated.Load(), Malformed: c.malformed.Load()}
}
