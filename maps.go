package idmap

import (
	"slices"
	"strings"
	"sync"

	"github.com/go-idmap/idmap/cache"
)

// mapsByName holds the maps of every database name used in the process:
// databases opened with one name share them (Name), and they live for the
// life of the process, as the names that Flush and StatsOf take do.
var mapsByName sync.Map // name → *cache.DB

// mapsOf returns the maps of the database called name, making them on first
// use.
func mapsOf(name string) *cache.DB {
	if d, ok := mapsByName.Load(name); ok {
		return d.(*cache.DB)
	}
	d, _ := mapsByName.LoadOrStore(name, cache.NewDB(name))
	return d.(*cache.DB)
}

// lookupMaps returns the maps of the database called name, or nil if no
// database of that name was opened.
func lookupMaps(name string) *cache.DB {
	if d, ok := mapsByName.Load(name); ok {
		return d.(*cache.DB)
	}
	return nil
}

// allMaps returns the maps of every database opened so far, sorted by name.
func allMaps() []*cache.DB {
	var dbs []*cache.DB
	mapsByName.Range(func(_, v any) bool {
		dbs = append(dbs, v.(*cache.DB))
		return true
	})
	slices.SortFunc(dbs, func(a, b *cache.DB) int { return strings.Compare(a.Name(), b.Name()) })
	return dbs
}
