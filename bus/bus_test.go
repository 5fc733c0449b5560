package bus

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Origin: "a1", Seq: 1, DB: "app", Table: "users", Keys: []any{int64(1), int64(-7), "x\"y", 2.5, uint64(1 << 63)}, Columns: []string{"id"}},
		{Origin: "a1", Seq: 2, DB: "app", Table: "orders", Keys: []any{[]any{int64(1), "b"}, []any{int64(2), "c"}}, Columns: []string{"a", "b"}},
		{Origin: "a1", Seq: 3, DB: "app", Table: "users"},
		{Origin: "a1", Seq: 4, DB: "app"},
	} {
		got, err := Decode(m.Encode())
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
		}
	}
}

func TestMessageWidens(t *testing.T) {
	many := make([]any, MaxKeys+1)
	for i := range many {
		many[i] = int64(i)
	}
	long := make([]any, 100)
	for i := range long {
		long[i] = strings.Repeat("k", 100) + fmt.Sprint(i)
	}
	for name, keys := range map[string][]any{
		"too many keys": many,
		"too long":      long,
		"odd key type":  {int64(1), struct{}{}},
		"nested":        {[]any{[]any{int64(1)}}},
	} {
		b := Message{Origin: "o", Seq: 1, DB: "d", Table: "t", Keys: keys}.Encode()
		if len(b) > MaxPayload {
			t.Errorf("%s: %d bytes > MaxPayload", name, len(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Table != "t" || got.Keys != nil || got.Columns != nil {
			t.Errorf("%s: got table %q keys %v; want the whole table", name, got.Table, got.Keys)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{
		``, `{`, `[]`, `{"v":2,"o":"a","s":1,"d":"x"}`, `{"v":1,"s":1,"d":"x"}`, `{"v":1,"o":"a","s":1}`,
		`{"v":1,"o":"a","s":1,"d":"x","k":[1]}`, `{"v":1,"o":"a","s":1,"d":"x","t":"u","k":[true]}`,
		`{"v":1,"o":"a","s":1,"d":"x","t":"u","k":[[[1]]]}`, `{"v":1,"o":"a","s":1,"d":"x","t":"u","k":[null]}`,
	} {
		if _, err := Decode([]byte(s)); !errors.Is(err, ErrFormat) {
			t.Errorf("Decode(%q) = %v; want ErrFormat", s, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Message{Origin: "a", Seq: 1, DB: "d", Table: "t", Keys: []any{int64(1), "s", []any{int64(2), 1.5}}}.Encode())
	f.Add([]byte(`{"v":1,"o":"a","s":1,"d":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes encodes again, and decodes to the same message.
		m2, err := Decode(m.Encode())
		if err != nil {
			t.Fatalf("re-decoding %q: %v", m.Encode(), err)
		}
		if len(m.Keys) <= MaxKeys && !reflect.DeepEqual(m, m2) {
			t.Fatalf("%#v != %#v", m, m2)
		}
	})
}

func TestLoopback(t *testing.T) {
	l := NewLoopback()
	defer l.Close()
	var got []string
	if err := l.Subscribe(Handler{
		Message: func(m Message) { got = append(got, fmt.Sprint("m", m.Seq)) },
		Gap:     func(g Gap) { got = append(got, fmt.Sprint("gap resumed=", g.Resumed)) },
	}); err != nil {
		t.Fatal(err)
	}
	_ = l.Publish(t.Context(), []Message{{Seq: 1}, {Seq: 2}})
	l.Cut(errors.New("cut"))
	_ = l.Publish(t.Context(), []Message{{Seq: 3}})
	l.Restore()
	_ = l.Publish(t.Context(), []Message{{Seq: 4}})
	l.Sync()
	l.Close()
	want := "gap resumed=true m1 m2 gap resumed=false gap resumed=true m4 gap resumed=false"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("got %q\nwant %q", s, want)
	}
	if n := len(l.Sent()); n != 4 {
		t.Fatalf("Sent: %d messages, want 4", n)
	}
}
