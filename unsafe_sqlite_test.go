package idmap

import (
	"reflect"
	"testing"
	"unsafe"

	sqlite3 "github.com/mattn/go-sqlite3"
	msqlite "modernc.org/sqlite"
)

// TestPreDataMirrors guards unsafe_sqlite.go: each mirror has the layout of
// its driver's preupdate data, and the drivers' Old and New methods have
// the shape that methodFunc calls (mattn's only with the build tag
// sqlite_preupdate_hook). A driver release that changes them makes the
// hooks take the reflection path; this test says so.
func TestPreDataMirrors(t *testing.T) {
	want := reflect.TypeOf(func(unsafe.Pointer, ...any) error { return nil })
	for _, c := range []struct {
		name           string
		driver, mirror reflect.Type
	}{
		{"mattn", reflect.TypeFor[sqlite3.SQLitePreUpdateData](), reflect.TypeFor[mattnPreData]()},
		{"modernc", reflect.TypeFor[msqlite.SQLitePreUpdateData](), reflect.TypeFor[moderncPreData]()},
	} {
		if !sameLayout(c.driver, c.mirror) {
			t.Errorf("%s: %v and %v differ in layout", c.name, c.driver, c.mirror)
		}
		for _, name := range []string{"Old", "New"} {
			m, ok := reflect.PointerTo(c.driver).MethodByName(name)
			if !ok {
				t.Logf("%s: no method %s (built without the preupdate hook)", c.name, name)
				continue
			}
			if !sameShape(m.Type, want) {
				t.Errorf("%s: %s has type %v, not the shape methodFunc calls", c.name, name, m.Type)
			}
		}
	}
}

type preDataProbe struct{ n int }

func (d *preDataProbe) Old(dest ...any) error {
	*dest[0].(*int) = d.n
	return nil
}

// TestMethodFunc: a method called through methodFunc gets its receiver and
// arguments as a direct call does; sameLayout refuses a struct whose field
// differs in type, name or place.
func TestMethodFunc(t *testing.T) {
	m, _ := reflect.TypeFor[*preDataProbe]().MethodByName("Old")
	if !sameShape(m.Type, reflect.TypeOf(func(unsafe.Pointer, ...any) error { return nil })) {
		t.Fatal("sameShape refuses a method of the right shape")
	}
	var got int
	if err := methodFunc(m)(unsafe.Pointer(&preDataProbe{n: 42}), &got); err != nil || got != 42 {
		t.Errorf("methodFunc call: %d, %v; want 42, nil", got, err)
	}
	type a struct {
		X int64
		Y string
	}
	type b struct {
		X int32
		Y string
	}
	type c struct {
		Y string
		X int64
	}
	type d struct {
		X *int
		Y string
	}
	type e struct {
		X unsafe.Pointer
		Y string
	}
	for _, u := range []reflect.Type{reflect.TypeFor[b](), reflect.TypeFor[c]()} {
		if sameLayout(reflect.TypeFor[a](), u) {
			t.Errorf("sameLayout(a, %v) is true", u)
		}
	}
	if !sameLayout(reflect.TypeFor[d](), reflect.TypeFor[e]()) {
		t.Error("sameLayout refuses a pointer mirrored by an unsafe.Pointer")
	}
}
