//go:build !sqlite_preupdate_hook

package idmap_test

// mattnPreupdate: mattn/go-sqlite3 is built with its preupdate hook.
const mattnPreupdate = false
