//go:build unix

package redisbus

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A privateRedis is a redis-server of one test's own, on a free loopback
// port, keeping nothing on disk: a server the test may kill and restart,
// which the shared test server must never be.
type privateRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	args []string // beyond the port, dir and persistence settings
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has been waited for
	log  *syncBuffer
}

// startPrivateRedis starts a private server with extra arguments (say
// "--replicaof", "127.0.0.1", "6400"), stopped at the end of the test; it
// skips the test when redis-server is not on PATH.
func startPrivateRedis(t *testing.T, args ...string) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH: the restart and failover faults need a private server (CI installs redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &privateRedis{t: t, bin: bin, dir: t.TempDir(), port: port, args: args, log: &syncBuffer{}}
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("private redis-server %d:\n%s", r.port, r.log.String())
		}
	})
	r.start()
	return r
}

func (r *privateRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start starts the server on its port (again) and waits until it answers
// PING.
func (r *privateRedis) start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no",
		"--protected-mode", "yes", "--repl-diskless-sync-delay", "0"}, r.args...)
	var err error
	deadline := time.Now().Add(e2eNever)
	for {
		r.cmd = exec.Command(r.bin, args...)
		r.cmd.Dir = r.dir
		r.cmd.Stdout = r.log
		r.cmd.Stderr = r.log
		// Its own process group, so that kill reaches whatever it forks.
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err = r.cmd.Start(); err != nil {
			r.t.Fatalf("starting redis-server: %v", err)
		}
		r.exit = make(chan struct{})
		go func(cmd *exec.Cmd, exit chan struct{}) { _ = cmd.Wait(); close(exit) }(r.cmd, r.exit)
		if err = r.waitPing(r.exit); err == nil {
			return
		}
		r.kill()
		if time.Now().After(deadline) {
			r.t.Fatalf("private redis-server on port %d: %v; log:\n%s", r.port, err, r.log.String())
		}
		time.Sleep(100 * time.Millisecond) // the port may still be held by the killed one
	}
}

// waitPing waits until the server answers PING, or exits.
func (r *privateRedis) waitPing(exit chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(e2eNever)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exit:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill SIGKILLs the server's process group and waits for it: a crash.
func (r *privateRedis) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.exit
	r.cmd = nil
}

// shutdown stops the server gracefully (SHUTDOWN NOSAVE: it closes every
// client and exits) and waits for it.
func (r *privateRedis) shutdown() {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	// SHUTDOWN answers nothing when it succeeds: the connection closes
	// (an error here says nothing).
	err := c.Shutdown(context.Background()).Err()
	select {
	case <-r.exit:
		r.cmd = nil
	case <-time.After(e2eNever):
		r.t.Fatalf("private redis-server did not exit within %v of SHUTDOWN (%v)", e2eNever, err)
	}
}

// restart: a crash (SIGKILL) then a start on the same port after down.
func (r *privateRedis) restart(down time.Duration) {
	r.t.Helper()
	r.kill()
	time.Sleep(down)
	r.start()
}

// TestMultiProcessRestart is TestMultiProcessLease with a server restart
// as the fault: writer A and reader B, with the default options, use a
// private redis-server (not the shared one) that the test crashes
// (SIGKILL) and starts again on the same port at once or after 1 s, or
// stops with SHUTDOWN and starts again. Both lose their connections; what
// A commits while the server is down waits in its outbox. No read of B may
// return a version later than the lease (+ publishSlack) after the commit
// of a newer one.
func TestMultiProcessRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a multi-process test (it starts its own redis-server and child processes)")
	}
	srv := startPrivateRedis(t)
	path := newSharedDB(t)
	channel := testChannel(t)
	a := startChild(t, "A", path, channel, e2eEnvRedis+"="+srv.addr(), e2eEnvDefaults+"=idmap-restart-a-"+randomID())
	b := startChild(t, "B", path, channel, e2eEnvRedis+"="+srv.addr(), e2eEnvDefaults+"=idmap-restart-b-"+randomID())
	a.expect("ready")
	b.expect("ready")

	faults := []leaseFault{
		{"kill+start", func() { srv.restart(0) }},
		{"kill, 1s, start", func() { srv.restart(time.Second) }},
		{"shutdown+start", func() { srv.shutdown(); srv.start() }},
		{"kill, 3s, start", func() { srv.restart(3 * time.Second) }},
	}
	runLeaseFaults(t, a, b, faults, true)
}

// runLeaseFaults runs IDMAP_E2E_ROUNDS rounds (1 by default) of each fault
// with leaseRound and logs each; with wantGap, each round must have made
// B's bus report a gap (the fault reached it).
func runLeaseFaults(t *testing.T, a, b *child, faults []leaseFault, wantGap bool) {
	t.Helper()
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("IDMAP_E2E_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	next := int64(1)
	var expiries, gaps, probes int64
	for round := 1; round <= rounds; round++ {
		for _, f := range faults {
			// A writes until 3 s after the fault, whatever it lasts.
			r := leaseRoundFor(t, a, b, &next, f.f, 3500*time.Millisecond+faultLength(f.name))
			r.expiries, expiries = r.expiries-expiries, r.expiries
			r.gaps, gaps = r.gaps-gaps, r.gaps
			r.probes, probes = r.probes-probes, r.probes
			r.log(t, f.name, round)
			if wantGap && r.gaps == 0 {
				t.Errorf("round %d, %s: B's bus reported no gap: the fault did not reach it", round, f.name)
			}
		}
	}
}

// leaseFault is a fault of runLeaseFaults, named in its log.
type leaseFault struct {
	name string
	f    func()
}

// faultLength is how long the server stays down in fault name ("kill, 3s,
// start": 3 s).
func faultLength(name string) time.Duration {
	if f := strings.Fields(name); len(f) == 3 {
		if d, err := time.ParseDuration(strings.TrimSuffix(f[1], ",")); err == nil {
			return d
		}
	}
	return 0
}

// TestMultiProcessFailover: a failover as Sentinel (or an operator) makes
// it. Two private servers, a primary P and its replica R; writer A and
// reader B (default options) reach the primary through loopback proxies,
// which stand for the address clients follow (a virtual IP, a DNS name, a
// Sentinel-aware client). The fault: P crashes (SIGKILL), R is promoted
// (REPLICAOF NO ONE) and both proxies send new connections to it; P then
// comes back as R's replica, for the next round's failover the other way.
// What A published on P that B had not received is lost with B's
// connection, which counts as a gap. No read of B may return a version
// later than the lease (+ publishSlack) after the commit of a newer one.
//
// A subscriber that stays on a replica while the writer publishes on the
// primary is TestMultiProcessReplicaSubscriber's case: probes are
// published where the bus publishes, so they cross replication as its
// messages do.
func TestMultiProcessFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a multi-process test (it starts its own redis-server and child processes)")
	}
	servers := []*privateRedis{startPrivateRedis(t), nil}
	servers[1] = startPrivateRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(servers[0].port))
	waitReplica(t, servers[1])
	primary := 0
	pa := newProxy(t, servers[0].addr())
	pb := newProxy(t, servers[0].addr())
	path := newSharedDB(t)
	channel := testChannel(t)
	a := startChild(t, "A", path, channel, e2eEnvRedis+"="+pa.addr(), e2eEnvDefaults+"=idmap-failover-a-"+randomID())
	b := startChild(t, "B", path, channel, e2eEnvRedis+"="+pb.addr(), e2eEnvDefaults+"=idmap-failover-b-"+randomID())
	a.expect("ready")
	b.expect("ready")

	failover := func() {
		old, next := servers[primary], servers[1-primary]
		old.kill()
		c := redis.NewClient(&redis.Options{Addr: next.addr()})
		err := c.Do(context.Background(), "REPLICAOF", "NO", "ONE").Err()
		c.Close()
		if err != nil {
			t.Fatalf("REPLICAOF NO ONE: %v", err)
		}
		pa.retarget(next.addr())
		pb.retarget(next.addr())
		primary = 1 - primary
	}
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("IDMAP_E2E_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	next := int64(1)
	var expiries, gaps, probes int64
	for round := 1; round <= rounds; round++ {
		r := leaseRound(t, a, b, &next, failover)
		r.expiries, expiries = r.expiries-expiries, r.expiries
		r.gaps, gaps = r.gaps-gaps, r.gaps
		r.probes, probes = r.probes-probes, r.probes
		r.log(t, "failover", round)
		if r.gaps == 0 {
			t.Errorf("round %d, %s: B's bus reported no gap: the fault did not reach it", round, "failover")
		}
		// The old primary comes back as the new one's replica.
		old := servers[1-primary]
		old.args = []string{"--replicaof", "127.0.0.1", strconv.Itoa(servers[primary].port)}
		old.start()
		waitReplica(t, old)
	}
}

// waitReplica waits until r's link to its primary is up.
func waitReplica(t *testing.T, r *privateRedis) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	deadline := time.Now().Add(e2eNever)
	for {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d: link not up within %v (%v):\n%s\nlog:\n%s", r.port, e2eNever, err, info, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMultiProcessReplicaSubscriber: reader B publishes on the primary P
// and subscribes on its replica R (SubscribeOptions), where messages
// arrive over replication; writer A publishes on P. The fault: the
// replication link stalls for 2 s (a proxy holds its bytes; Redis's own
// replication timeout is 60 s). B's probes must take the messages' way
// (published on P, delivered through R), or B proves delivery through R
// alone and serves old rows for the whole stall.
func TestMultiProcessReplicaSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a multi-process test (it starts its own redis-server and child processes)")
	}
	primary := startPrivateRedis(t)
	link := newProxy(t, primary.addr())
	t.Cleanup(link.resume)
	_, port, _ := net.SplitHostPort(link.addr())
	replica := startPrivateRedis(t, "--replicaof", "127.0.0.1", port)
	waitReplica(t, replica)
	path := newSharedDB(t)
	channel := testChannel(t)
	a := startChild(t, "A", path, channel, e2eEnvRedis+"="+primary.addr(), e2eEnvDefaults+"=idmap-replica-a-"+randomID())
	b := startChild(t, "B", path, channel, e2eEnvRedis+"="+primary.addr(), e2eEnvSubRedis+"="+replica.addr(),
		e2eEnvDefaults+"=idmap-replica-b-"+randomID())
	a.expect("ready")
	b.expect("ready")
	runLeaseFaults(t, a, b, []leaseFault{{"replication stall 2s", func() { link.pause(); time.Sleep(2 * time.Second); link.resume() }}}, false)
}
