package main

import (
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// The tour runs, and prints what README promises it shows.
func TestQuickstart(t *testing.T) {
	out, runErr := runOnce()
	if runErr != nil {
		t.Fatalf("run: %v\n%s", runErr, out)
	}
	for _, want := range []string{
		"1. Identity: two queries that return one row give one object.\n   same pointer: true\n",
		"visits after the reload: 3\n",
		"3. Get serves a loaded row from the map, without a query.\n   queries sent: 0\n   same pointer: true\n",
		"   PreFlush  db=app.db reason=\"manual\" scoped=false\n",
		"in the scope, refreshed in place: queries sent: 1 | same pointer: true | name: bea | visits: 5\n",
		"6. Changing a row.",
		"in a scope:        the shared map now loads: cyd | same object: false\n",
		"in a transaction:  before the commit others see: cyd | after: cyril\n",
		"through a copy:    Get now returns: cy | the old object still says: cyril\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

// runOnce runs the tour once per process and returns what it printed: it
// registers its driver ("sqlite3-counted"), which database/sql allows once
// (go test -count=2 runs the test twice).
var runOnce = sync.OnceValues(func() (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	runErr := run()
	os.Stdout = stdout
	w.Close()
	return <-done, runErr
})
