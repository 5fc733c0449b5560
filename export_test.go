package idmap

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/go-sql-driver/mysql"
)

// SetFlightWaitHook sets the function called when a Get starts waiting for
// another's load of the same key (tests only).
func SetFlightWaitHook(f func()) { flightWaitHook = f }

// AssignLikeScan stores v, as Rows.Scan into an *any gives it, into the
// value of type t at p the way Bind does without Rows.Scan, or reports that
// it leaves the value to Rows.Scan (tests only).
func AssignLikeScan(t reflect.Type, p unsafe.Pointer, v any) bool {
	f := field{typ: t, ptrType: ifaceType(reflect.PointerTo(t))}
	f.setConv()
	if f.conv == convNone {
		return false
	}
	return f.assign(p, v)
}

// SetSchemaTTL sets how long a catalogue read is trusted and returns a
// function that restores it (tests only).
func SetSchemaTTL(d time.Duration) (restore func()) {
	old := schemaTTL
	schemaTTL = d
	return func() { schemaTTL = old }
}

// SetEngineHooks turns SQLite's hooks on or off for connections opened
// after it, and returns a function that restores the setting (tests only).
func SetEngineHooks(on bool) (restore func()) {
	old := engineHooksOff.Load()
	engineHooksOff.Store(!on)
	return func() { engineHooksOff.Store(old) }
}

// SetPreupdateFastPath chooses between the layout-checked callback and the
// reflect.MakeFunc one for connections opened after it (tests only).
func SetPreupdateFastPath(on bool) (restore func()) {
	old := preupdateSlowPath.Load()
	preupdateSlowPath.Store(!on)
	return func() { preupdateSlowPath.Store(old) }
}

func (c *conn) state() *connState { return c.st }

// HookMode returns which SQLite hook reports the row changes of the idmap
// connection dc (from sql.Conn.Raw): "preupdate", "update" or "off"
// (tests only).
func HookMode(dc any) string {
	s, ok := dc.(interface{ state() *connState })
	if !ok || s.state().hooks == nil {
		return "off"
	}
	return s.state().hooks.mode.String()
}

// RunID is unique to this test process: it names what the tests create on
// the shared servers (databases, schemas, roles, tables, channels). The
// process id alone is not unique there: test processes in other PID
// namespaces (other containers using the same servers) reuse ids, and a
// role or schema of one would be dropped or replaced by the other.
var RunID = runID

var runID = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strconv.Itoa(os.Getpid()) + "_" + hex.EncodeToString(b[:])
}()

// MySQLTestDatabase creates the database name on the MySQL server of dsn,
// dropped when the test ends, and returns dsn's configuration with name as
// its database (tests only).
func MySQLTestDatabase(t testing.TB, dsn, name string) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, _ := sql.Open("mysql", cfg.FormatDSN())
		a.Exec("DROP DATABASE IF EXISTS " + name)
		a.Close()
	})
	cfg = cfg.Clone()
	cfg.DBName = name
	return cfg
}

// PostgresTestSchema creates schema on the PostgreSQL server of dsn,
// dropped (with what it holds) when the test ends, and returns dsn with
// schema as its search_path (tests only).
func PostgresTestSchema(t testing.TB, dsn, schema string) string {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, _ := sql.Open("pgx", dsn)
		a.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE")
		a.Close()
	})
	if strings.Contains(dsn, "?") {
		return dsn + "&search_path=" + schema
	}
	return dsn + "?search_path=" + schema
}
