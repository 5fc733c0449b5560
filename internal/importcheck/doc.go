// Package importcheck holds a test of what importing idmap does to a
// program: its test binary links idmap and nothing that imports expvar.
package importcheck
