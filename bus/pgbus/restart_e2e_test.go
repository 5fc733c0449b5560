//go:build linux

package pgbus_test

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// pgBin is where PostgreSQL's initdb and pg_ctl are: IDMAP_PGBIN, as for
// scripts/start-servers.sh, else Debian's PostgreSQL 15 (the CI's).
var pgBin = cmp.Or(os.Getenv("IDMAP_PGBIN"), "/usr/lib/postgresql/15/bin")

// A privateCluster is a PostgreSQL cluster of one test's own, on a free
// loopback port, run as the postgres user with trust authentication: a
// server the test may restart, which the shared test server must never be.
type privateCluster struct {
	t    *testing.T
	dir  string // owned by postgres; data/ and log inside
	port int
}

// startPrivateCluster creates and starts a private cluster, stopped and
// removed at the end of the test. It skips the test when not root (initdb
// refuses root, so the cluster runs as the postgres user, which needs
// runuser) or when initdb and pg_ctl (under pgBin) or the postgres user
// are missing.
func startPrivateCluster(t *testing.T) *privateCluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the restart faults need a private PostgreSQL cluster, run as the postgres user through runuser: run the tests as root")
	}
	for _, bin := range []string{filepath.Join(pgBin, "initdb"), filepath.Join(pgBin, "pg_ctl")} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("the restart faults need a private PostgreSQL cluster: %v", err)
		}
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skip("the restart faults need a private PostgreSQL cluster: runuser is not on PATH")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("the restart faults need a private PostgreSQL cluster: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	// Not t.TempDir: its parents are root's, closed to postgres.
	dir, err := os.MkdirTemp("", "idmap-pgbus-restart-")
	if err != nil {
		t.Fatal(err)
	}
	c := &privateCluster{t: t, dir: dir}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("private cluster's log:\n%s", log)
		}
		_ = os.RemoveAll(dir)
	})
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c.run("initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions")
	opts := strings.Join([]string{"-c listen_addresses=127.0.0.1", "-c port=" + strconv.Itoa(c.port),
		"-c unix_socket_directories=" + dir, "-c fsync=off", "-c full_page_writes=off",
		"-c shared_buffers=16MB", "-c max_connections=40"}, " ")
	c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start")
	return c
}

func (c *privateCluster) data() string { return filepath.Join(c.dir, "data") }

// dsn is the private cluster's DSN for its superuser (trust: no password).
func (c *privateCluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// run runs one of PostgreSQL's programs as the postgres user, bounded in
// time.
func (c *privateCluster) run(prog string, args ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(pgBin, prog)}, args...)...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

// restart restarts the cluster with pg_ctl's mode: "immediate" (every
// process quits at once, as in a crash; recovery on start) or "fast"
// (clients are disconnected, a checkpoint, then the start).
func (c *privateCluster) restart(mode string) {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "-m", mode, "restart")
}

// stop stops the cluster at once; if pg_ctl cannot, it kills the
// postmaster (its children quit when it dies).
func (c *privateCluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", filepath.Join(pgBin, "pg_ctl"), "-D", c.data(), "-w", "-m", "immediate", "stop")
	if err := cmd.Run(); err == nil {
		return
	}
	if b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestPostgresRestart is TestPostgresLeaseFaults with a server restart as
// the fault: writer A and reader B, with the default options, use a
// private cluster (not the shared server; their database and their bus)
// that the test restarts with pg_ctl restart -m immediate (a crash:
// recovery on start) and -m fast. Both lose every connection; A's writes
// that fail are made again once the server is back (a notification is
// part of its transaction: none is lost for a commit), B's reads that
// fail are not counted. No read of B may return a version later than the
// lease after the commit of a newer one.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the multi-process test")
	}
	pc := startPrivateCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := pgx.Connect(ctx, pc.dsn())
	if err != nil {
		t.Fatalf("connecting to the private cluster: %v", err)
	}
	table := unique("pgbus_restart")
	ident := pgx.Identifier{table}.Sanitize()
	if _, err := c.Exec(ctx, "CREATE TABLE "+ident+" (id bigint PRIMARY KEY, name text NOT NULL); INSERT INTO "+ident+" VALUES (1, 'v0')"); err != nil {
		t.Fatal(err)
	}
	_ = c.Close(ctx)
	channel := unique("pgbus_restart")
	env := func(app string) []string {
		return []string{envTable + "=" + table, envChannel + "=" + channel, envApp + "=" + app,
			envBusDSN + "=" + pc.dsn(), "IDMAP_PG_DSN=" + pc.dsn(), envRetry + "=1"}
	}
	a := startChild(t, "A", env(unique("pgbus_restart_a"))...)
	b := startChild(t, "B", env(unique("pgbus_restart_b"))...)

	runLeaseFaults(t, a, b, []leaseFault{
		{"restart -m immediate", func() { pc.restart("immediate") }},
		{"restart -m fast", func() { pc.restart("fast") }},
	}, true)
}
