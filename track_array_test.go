package idmap

import (
	"database/sql/driver"
	"reflect"
	"slices"
	"testing"

	"github.com/go-idmap/idmap/classify"
)

type pgTextArray string

func (a pgTextArray) Value() (driver.Value, error) { return string(a), nil }

// col = ANY($1): the keys are the array argument's elements; an argument
// that is not a readable array widens (ok false).
func TestWhereKeysAnyArray(t *testing.T) {
	st := classify.Classify(classify.Postgres, "UPDATE users SET name = $1 WHERE id = ANY($2)")
	where := st.Writes[0].Where
	id := 7
	for _, c := range []struct {
		arg  any
		want []any
		ok   bool
	}{
		{[]int64{1, 3}, []any{int64(1), int64(3)}, true},
		{[]int{5}, []any{int64(5)}, true},
		{[]*int{&id, nil}, []any{int64(7)}, true},
		{[2]string{"a", "12"}, []any{"a", int64(12)}, true},
		{[]any{int32(4), nil}, []any{int64(4)}, true},
		{[]int64{}, []any{}, true},
		{pgTextArray("{1, 2,-3}"), []any{int64(1), int64(2), int64(-3)}, true},
		{"{}", []any{}, true},
		{"{a,b}", nil, false},
		{"1,2", nil, false},
		{int64(3), nil, false},
		{[]byte("{4}"), []any{int64(4)}, true},
		{nil, nil, false},
		{make([]int64, maxKeys+1), nil, false},
	} {
		args := []driver.NamedValue{{Ordinal: 1, Value: "n"}, {Ordinal: 2, Value: c.arg}}
		got, ok := whereKeys([]string{"id"}, where, resolver{args: args})
		if ok != c.ok || (ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("ANY(%#v): got %v, %v; want %v, %v", c.arg, got, ok, c.want, c.ok)
		}
	}
	// With another condition on the key, the keys cover the rows written
	// (a superset is safe: more is expired, never less).
	st = classify.Classify(classify.Postgres, "DELETE FROM users WHERE id = ANY($1) AND id = 3")
	got, ok := whereKeys([]string{"id"}, st.Writes[0].Where, resolver{args: []driver.NamedValue{{Ordinal: 1, Value: []int64{1, 2, 3}}}})
	if !ok || !slices.Contains(got, any(int64(3))) {
		t.Errorf("ANY and =: got %v, %v", got, ok)
	}
}
