package pgfeed

import (
	"context"

	"github.com/go-idmap/idmap/bus"
)

// Relay subscribes to the feed and publishes what it delivers on b, so
// that the instances of a cluster follow one replication slot (this
// process's) through their bus instead of each paying for a slot and a
// walsender of its own. It is a Subscribe (the process may subscribe
// databases of its own to the same feed), and Close stops it.
//
// A relay is weaker than a feed of one's own in two ways. A gap of the
// feed does not pause the other instances: the relay publishes a message
// that expires the whole database when the feed is lost and again when it
// is back, so a change made during the gap may be served stale until the
// feed is back. And a commit does not wait for the relay (read-your-writes
// across instances has the bus's delivery window).
func (f *Feed) Relay(b bus.Bus) error {
	whole := func() {
		_ = b.Publish(context.Background(), []bus.Message{{Origin: f.origin, Seq: f.seq.Add(1), DB: f.db}})
	}
	return f.Subscribe(bus.Handler{
		Message: func(m bus.Message) {
			if err := b.Publish(context.Background(), []bus.Message{m}); err != nil {
				f.log.Warn("pgfeed: relaying a change failed", "err", err.Error())
			}
		},
		Gap: func(bus.Gap) { whole() },
	})
}
