package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestOpenChecksSizeTagAndFormat(t *testing.T) {
	key := []byte("0123456789abcdef-key")
	m := Message{Origin: "o", Seq: 3, DB: "db", Table: "t", Keys: []any{int64(1), "x"}, Columns: []string{"id"}}
	enc := m.Encode()
	signed := string(Sign(enc, key))
	if got, err := Open(signed, key, 0); err != nil || string(got.Encode()) != string(enc) {
		t.Fatalf("Open(signed) = %v, %v; want the message", got, err)
	}
	// Without a key, a tag is skipped and an untagged message read.
	for _, p := range []string{signed, string(enc)} {
		if got, err := Open(p, nil, 0); err != nil || got.Seq != 3 {
			t.Errorf("Open(%.30q, no key) = %v, %v", p, got, err)
		}
	}
	if string(Sign(enc, nil)) != string(enc) {
		t.Error("Sign without a key changed the payload")
	}
	tampered := strings.Replace(signed, `"t"`, `"u"`, 1)
	truncated := signed[:len(signed)-5]
	for _, c := range []struct {
		name, p string
		key     []byte
		want    error
	}{
		{"untagged", string(enc), key, ErrUnauthenticated},
		{"other key", string(Sign(enc, []byte("another key, 16+ bytes"))), key, ErrUnauthenticated},
		{"tampered", tampered, key, ErrUnauthenticated},
		{"truncated", truncated, key, ErrUnauthenticated},
		{"truncated tag", signed[:len(tagPrefix)+10], key, ErrUnauthenticated},
		{"truncated, no key", truncated, nil, ErrFormat},
		{"bad tag, no key", tagPrefix + "x", nil, ErrFormat},
		{"oversized", `{"v":1,"o":"o","d":"db","t":"` + strings.Repeat("a", DefaultMaxMessageSize) + `"}`, nil, ErrTooLarge},
		{"oversized, signed", string(Sign([]byte(strings.Repeat(" ", 200)+string(enc)), key)), key, nil},
		{"garbage", "not json", nil, ErrFormat},
	} {
		max := 0
		if c.name == "oversized, signed" {
			max = 100
			c.want = ErrTooLarge
		}
		_, err := Open(c.p, c.key, max)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Open = %v; want %v", c.name, err, c.want)
		}
	}
}

// A message with more keys than Encode ever writes expires its whole
// table.
func TestDecodeTooManyKeysWidens(t *testing.T) {
	keys := make([]string, MaxKeys+1)
	for i := range keys {
		keys[i] = fmt.Sprint(i)
	}
	p := `{"v":1,"o":"o","s":1,"d":"db","t":"t","c":["id"],"k":[` + strings.Join(keys, ",") + `]}`
	m, err := Decode([]byte(p))
	if err != nil || m.Table != "t" || m.Keys != nil || m.Columns != nil {
		t.Fatalf("Decode = %+v, %v; want the whole table t", m, err)
	}
}

func TestDropCounter(t *testing.T) {
	var c DropCounter
	var logged []int
	for i := 1; i <= 9; i++ {
		if c.Add(fmt.Errorf("%w: x", ErrUnauthenticated)) {
			logged = append(logged, i)
		}
	}
	c.Add(fmt.Errorf("%w: x", ErrTooLarge))
	c.Add(ErrFormat)
	if fmt.Sprint(logged) != "[1 2 4 8]" {
		t.Errorf("logged drops %v; want [1 2 4 8]", logged)
	}
	if got := c.Load(); got != (Drops{TooLarge: 1, Unauthenticated: 9, Malformed: 1}) {
		t.Errorf("Load() = %+v", got)
	}
}

// Open never panics, and accepts with a key only what Sign made with it.
func FuzzOpen(f *testing.F) {
	key := []byte("0123456789abcdef-key")
	m := Message{Origin: "o", Seq: 1, DB: "db", Table: "t", Keys: []any{int64(1)}, Columns: []string{"id"}}
	f.Add(string(Sign(m.Encode(), key)))
	f.Add(string(m.Encode()))
	f.Add(tagPrefix + strings.Repeat("A", tagLen) + ":{}")
	f.Fuzz(func(t *testing.T, p string) {
		_, _ = Open(p, nil, 1024)
		if _, err := Open(p, key, 1024); err == nil && !strings.HasPrefix(p, tagPrefix) {
			t.Fatalf("Open(%q) with a key accepted an untagged payload", p)
		}
	})
}
