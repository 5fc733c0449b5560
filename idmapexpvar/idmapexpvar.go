// Package idmapexpvar publishes idmap's statistics through expvar, for
// programs that ask for it.
//
// Package idmap itself does not import expvar: importing expvar registers
// a handler for /debug/vars on http.DefaultServeMux, a side effect a
// library should not impose. Importing this package has that effect
// (expvar's), and Publish adds the variable.
package idmapexpvar

import (
	"expvar"
	"fmt"
	"sync"

	"github.com/go-idmap/idmap"
)

// DefaultName is the variable's name when Publish is given "".
const DefaultName = "idmap"

var (
	mu        sync.Mutex
	published = map[string]bool{} // protected by mu: names this package published
)

// Publish publishes idmap.AllStats as the expvar variable name (DefaultName
// if name is ""), served with the other variables by expvar.Handler (at
// /debug/vars on http.DefaultServeMux). Publishing the same name again is
// a no-op; a name that another variable holds is an error (expvar.Publish
// would panic).
func Publish(name string) error {
	if name == "" {
		name = DefaultName
	}
	mu.Lock()
	defer mu.Unlock()
	if published[name] {
		return nil
	}
	if expvar.Get(name) != nil {
		return fmt.Errorf("idmap: idmapexpvar.Publish: the expvar name %q is taken by another variable", name)
	}
	expvar.Publish(name, expvar.Func(func() any { return idmap.AllStats() }))
	published[name] = true
	return nil
}
