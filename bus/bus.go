// Package bus carries invalidations between instances of a service that
// share a database, so that a write made by one instance expires what the
// others hold in their maps.
//
// A database opts in with idmap.WithBus. idmap publishes one Message per
// table a committed transaction (or an autocommit statement) wrote, and
// expires what each received message names through the same epochs as a
// local write: a load that began before the message arrived is never kept
// as fresh. Instances ignore their own messages, by origin.
//
// The adapters live in their own modules, so that idmap itself depends on
// neither engine: github.com/go-idmap/idmap/bus/pgbus (PostgreSQL
// LISTEN/NOTIFY, published in the writer's own transaction) and
// github.com/go-idmap/idmap/bus/redisbus (Redis pub/sub, published after
// commit). Loopback is an in-process bus for tests.
//
// Delivery is not instant: between a commit and the moment another instance
// receives its message, that instance may still serve the old row. When a
// subscription is lost, messages may be lost with it; the adapter reports a
// Gap, and idmap serves nothing from that database's maps until the
// subscription is back (it expires everything at the loss and again at the
// resumption). A subscription can also stall without failing; a Bus that
// is a Prover bounds that window: idmap serves from the maps only while
// the newest probe that came back through the subscription was sent less
// than the database's lease ago (idmap.Lease, 500 ms by default).
//
// A message only ever expires what it names: a forged, replayed, truncated
// or oversized message can cost extra misses (at worst, every read of the
// database misses while someone floods the channel), never a stale or
// wrong object. A subscriber accepts only what Open accepts.
package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
)

// Version is the version of the message format that Encode writes.
const Version = 1

// Bounds on one message: past MaxKeys keys, or MaxPayload bytes once
// encoded, a message names its whole table instead of keys. MaxPayload
// keeps a message under PostgreSQL's 8,000-byte NOTIFY payload with room
// for the channel.
const (
	MaxKeys    = 256
	MaxPayload = 7000
)

// A Message is one invalidation: what one transaction (or autocommit
// statement) of the origin instance wrote to one table, to a whole table,
// or to a whole database.
type Message struct {
	Origin string // the publishing instance; subscribers ignore their own
	Seq    uint64 // the origin's sequence number, increasing from 1
	DB     string // the database's idmap name (idmap.Name)
	// Table is the table written, folded to lower case; "" for the whole
	// database.
	Table string
	// Keys are the primary keys of the rows written, in idmap's normalised
	// form: int64, uint64, float64 or string, or a []any of those for a
	// composite key. Nil (or empty) means the whole table.
	Keys []any
	// Columns are the key columns that Keys are values of, in key order,
	// in lower case. An instance whose mapped types key the table by other
	// columns (or that is not told) expires the whole table instead.
	Columns []string
}

// Whole reports whether m expires a whole database.
func (m *Message) Whole() bool { return m.Table == "" }

type wire struct {
	V int               `json:"v"`
	O string            `json:"o"`
	S uint64            `json:"s"`
	D string            `json:"d"`
	T string            `json:"t,omitempty"`
	K []json.RawMessage `json:"k,omitempty"`
	C []string          `json:"c,omitempty"`
}

// ErrFormat is returned by Decode for a payload that is not a message of a
// version it reads.
var ErrFormat = errors.New("bus: not an idmap invalidation message")

// Encode returns m's wire form, JSON. A message that names keys but would
// exceed MaxKeys keys or MaxPayload bytes is encoded for its whole table; a
// key of another type than those Message lists widens it the same way.
func (m Message) Encode() []byte {
	w := wire{V: Version, O: m.Origin, S: m.Seq, D: m.DB, T: m.Table}
	if m.Table != "" && len(m.Keys) > 0 && len(m.Keys) <= MaxKeys {
		w.K = make([]json.RawMessage, 0, len(m.Keys))
		for _, k := range m.Keys {
			b, ok := encodeKey(k)
			if !ok {
				w.K = nil
				break
			}
			w.K = append(w.K, b)
		}
	}
	if w.K != nil {
		w.C = m.Columns
	}
	b, err := json.Marshal(w)
	if err == nil && len(b) > MaxPayload && w.K != nil {
		w.K, w.C = nil, nil
		b, err = json.Marshal(w)
	}
	if err != nil {
		// Only strings and numbers are marshalled: this cannot happen.
		panic("bus: encoding a message: " + err.Error())
	}
	return b
}

func encodeKey(k any) (json.RawMessage, bool) {
	switch x := k.(type) {
	case int64:
		return strconv.AppendInt(nil, x, 10), true
	case uint64:
		return strconv.AppendUint(nil, x, 10), true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, false
		}
		// A float that is an integer was normalised to int64; the 'g'
		// form keeps a fractional one apart from any integer.
		b := strconv.AppendFloat(nil, x, 'g', -1, 64)
		if !bytes.ContainsAny(b, ".eE") {
			b = append(b, ".0"...)
		}
		return b, true
	case string:
		b, err := json.Marshal(x)
		return b, err == nil
	case []any:
		buf := []byte{'['}
		for i, p := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			if _, nested := p.([]any); nested {
				return nil, false
			}
			b, ok := encodeKey(p)
			if !ok {
				return nil, false
			}
			buf = append(buf, b...)
		}
		return append(buf, ']'), true
	}
	return nil, false
}

// Decode reads a message written by Encode. It returns ErrFormat (wrapped)
// for anything else, including a later version.
func Decode(b []byte) (Message, error) {
	var w wire
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&w); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if w.V != Version {
		return Message{}, fmt.Errorf("%w: version %d (this build reads %d)", ErrFormat, w.V, Version)
	}
	if w.O == "" || w.D == "" {
		return Message{}, fmt.Errorf("%w: no origin or database", ErrFormat)
	}
	m := Message{Origin: w.O, Seq: w.S, DB: w.D, Table: w.T}
	if w.T == "" && len(w.K) > 0 {
		return Message{}, fmt.Errorf("%w: keys without a table", ErrFormat)
	}
	if len(w.K) > MaxKeys {
		// Encode never writes so many: expire the whole table rather
		// than spend time on each key.
		w.K = nil
	}
	if len(w.K) > 0 {
		m.Columns = w.C
	}
	for _, raw := range w.K {
		k, err := decodeKey(raw, true)
		if err != nil {
			return Message{}, err
		}
		m.Keys = append(m.Keys, k)
	}
	return m, nil
}

func decodeKey(raw json.RawMessage, top bool) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrFormat)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		return s, nil
	case '[':
		if !top {
			return nil, fmt.Errorf("%w: nested composite key", ErrFormat)
		}
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		out := make([]any, len(parts))
		for i, p := range parts {
			k, err := decodeKey(p, false)
			if err != nil {
				return nil, err
			}
			out[i] = k
		}
		return out, nil
	}
	s := string(raw)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !bytes.ContainsAny(raw, "tfn") {
		return f, nil
	}
	return nil, fmt.Errorf("%w: key %.40q", ErrFormat, s)
}

// A Bus carries messages between instances. Implementations are safe for
// concurrent use.
type Bus interface {
	// Publish sends msgs to the other instances. idmap calls it after the
	// write committed, from the goroutine that committed: it must not
	// block on the network (queue, and send in the background).
	Publish(ctx context.Context, msgs []Message) error
	// Subscribe delivers the messages of every instance, and the gaps in
	// that delivery, to h until the bus is closed. It does not wait for
	// the subscription to be made: the bus reports Gap{Resumed: true} once
	// it listens (and after each loss, once it listens again). Closing the
	// bus reports a last Gap (Err ErrClosed) to a subscriber that was
	// listening: what is published from then on does not reach it. idmap
	// calls Subscribe once per bus.
	Subscribe(h Handler) error
}

// A ConnPublisher is a Bus that publishes from the writer's own connection,
// inside its transaction: the message is sent if and only if the write
// commits. idmap executes the statement that Statement returns on the
// transaction's connection just before COMMIT, and on the statement's
// connection right after an autocommit write; Publish is not called.
type ConnPublisher interface {
	Bus
	// Statement returns the SQL text and arguments that publish msgs.
	Statement(msgs []Message) (query string, args []any)
}

// Handler receives what a subscription delivers. Its functions are called
// from one goroutine at a time, in order.
type Handler struct {
	// Message is called for each message, the instance's own included
	// (idmap ignores those).
	Message func(Message)
	// Gap is called when the subscription is lost (Resumed false: messages
	// may be missed from now on) and when it is listening again (Resumed
	// true: from now on, nothing is missed).
	Gap func(Gap)
	// Probe is called with the token of each probe (Prober.Probe) that
	// came back through the subscription: every message that the server
	// accepted before the probe has been handed to Message already. Only a
	// Prober calls it; a nil Probe is not called.
	Probe func(token uint64)
}

// A Prover is a Bus that can prove delivery: a probe it sends comes back
// through each of its own subscriptions (and no other instance's), behind
// every message the server accepted before it. idmap probes such a bus
// every quarter of the database's lease (idmap.Lease) and serves from its
// maps only while the newest proof is younger than the lease: a
// subscription that stalls without failing, or messages held up anywhere
// between the server and the subscriber, cannot make it serve a row
// longer than the lease after a write that the server had accepted.
type Prover interface {
	Bus
	// Probe sends token so that every subscription of this bus hands it
	// to its Handler's Probe once everything the server accepted before
	// the probe has been delivered. It may block on the network, at most
	// until ctx is done; idmap calls it from a goroutine of its own, one
	// call at a time. An error means that this probe will not come back.
	Probe(ctx context.Context, token uint64) error
}

// An Attacher is a Bus that wants to know the databases that use it:
// idmap calls Attach when a database is opened with the bus (idmap.WithBus).
// The adapters use it to log where the database logs when they were given
// no logger of their own.
type Attacher interface {
	Bus
	Attach(a Attachment)
}

// A Dropper is a bus that counts the received payloads it dropped (over
// its size bound, without a valid tag, not a message): pgbus and redisbus
// are. idmap reports the counts in the statistics of each database that
// uses the bus (idmap.BusStats.Dropped).
type Dropper interface {
	Bus
	Dropped() Drops
}

// Attachment describes a database that uses a bus.
type Attachment struct {
	DB     string       // the database's idmap name
	Logger *slog.Logger // the database's logger (idmap.Logger); nil if it logs nothing
}

// ProbeChannelPrefix begins the name of the channel on which an adapter
// sends its probes: the prefix, then an id of the bus's own, so that no
// other instance receives them.
const ProbeChannelPrefix = "idmap.probe."

// Gap reports a change in a subscription's state.
type Gap struct {
	Resumed bool  // false: the subscription was lost; true: it listens (again)
	Err     error // why it was lost, when known
}

// A Syncer is a Bus that can say when its subscription has delivered
// everything committed up to a point: idmap's change feeds (package
// pgfeed). After a commit whose effects idmap's statement reader cannot
// bound (triggers, rules, views, writing functions), idmap runs the
// statement on the connection that committed, as its own statement
// outside any transaction, then calls wait before Commit (or the
// autocommit statement) returns, so that the source's invalidations for
// that commit have been applied by then. wait is called exactly once,
// also when the statement failed (with a context already done). A wait
// that fails makes idmap expire the whole database instead.
type Syncer interface {
	Bus
	SyncStatement() (query string, args []any, wait func(ctx context.Context) error)
}
