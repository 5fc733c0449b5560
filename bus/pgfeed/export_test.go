package pgfeed

import "time"

// StallReader makes f's stream reader stop reading, silently (as a
// network that stops forwarding would: nothing fails, nothing is
// delivered), until resume is called. It returns once the reader has
// stopped, or after wait if it has not (ok false).
func StallReader(f *Feed, wait time.Duration) (resume func(), ok bool) {
	st := &stallHook{entered: make(chan struct{}), release: make(chan struct{})}
	f.stall.Store(st)
	resume = func() {
		if f.stall.CompareAndSwap(st, nil) {
			close(st.release)
		}
	}
	select {
	case <-st.entered:
		return resume, true
	case <-time.After(wait):
		return resume, false
	}
}

// ProbePrefix is the prefix of f's probe messages.
func ProbePrefix(f *Feed) string { return f.probePrefix }

// MarkPrefix is the prefix of the read-your-writes marks.
const MarkPrefix = markPrefix
