package signals

import (
	"sync"
	"testing"
)

func TestConnectSendDisconnect(t *testing.T) {
	var s Signal[int]
	var got []string
	d1 := s.Connect(func(v int) { got = append(got, "a") })
	d2 := s.Connect(func(v int) { got = append(got, "b") })
	s.Connect(nil) // ignored
	if n := s.Connected(); n != 2 {
		t.Fatalf("Connected() = %d; want 2", n)
	}
	s.Send(1)
	d1()
	d1() // harmless
	s.Send(2)
	d2()
	s.Send(3)
	if want := "a b b"; join(got) != want {
		t.Errorf("got %q; want %q", join(got), want)
	}
	if s.Connected() != 0 {
		t.Errorf("receivers left after disconnecting")
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// Sends and connections may run at once (go test -race).
func TestConcurrent(t *testing.T) {
	var s Signal[Flush]
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 100 {
				s.Connect(func(Flush) {})()
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				s.Send(Flush{Reason: Manual})
			}
		}()
	}
	wg.Wait()
}

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{Manual: "manual", RequestEnd: "request end", TxEnd: "transaction end", SchemaChange: "schema change", BusGap: "bus gap", Reason(9): "unknown"} {
		if got := r.String(); got != want {
			t.Errorf("%d.String() = %q; want %q", int(r), got, want)
		}
	}
}
