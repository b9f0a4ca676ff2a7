// Package redistest starts real redis-server processes on loopback ports for
// tests: keygate's Redis behaviour is tested against Redis itself, killed,
// paused and restarted to play outages. It fails a test, never skips it, when
// redis-server is not installed.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a real redis-server on a loopback port, started by the test
// that needs it and killed at its cleanup. Tests may kill, pause and restart
// it to play an outage.
type Server struct {
	tb   testing.TB
	bin  string
	port int

	// Dir is the server's working directory, removed at cleanup.
	Dir string
	// Conf is a config file put first on the command line, if any.
	Conf string
	// Args are extra command-line arguments.
	Args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts a redis-server with extra arguments on a free port. It
// fails the test, never skips it, when redis-server is not installed.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		s, err := launch(tb, FreePort(tb), extra...)
		if err == nil {
			return s
		}
		if attempt == 3 { // another process may have taken the port
			tb.Fatalf("start redis-server: %v", err)
		}
	}
}

// StartAt starts a redis-server on port.
func StartAt(tb testing.TB, port int, extra ...string) *Server {
	tb.Helper()
	s, err := launch(tb, port, extra...)
	if err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	return s
}

func launch(tb testing.TB, port int, extra ...string) (*Server, error) {
	tb.Helper()
	s := New(tb, port)
	s.Args = extra
	return s, s.Run()
}

// New prepares a server on port, killed at cleanup, without starting it;
// set Conf and Args, then call Run.
func New(tb testing.TB, port int) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not installed (%v): keygate's tests need a real Redis; install it, e.g. apt-get install -y redis-server", err)
	}
	s := &Server{tb: tb, bin: bin, Dir: tb.TempDir(), port: port}
	tb.Cleanup(s.Kill)
	return s
}

// usedPorts are the ports FreePort gave out: never twice, so that a client
// of a killed server cannot reach another test's server on its port.
var usedPorts sync.Map

// FreePort returns a loopback port nothing listens on, as far as one can
// tell without holding it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, used := usedPorts.LoadOrStore(port, true); !used {
			return port
		}
	}
}

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Addr returns host:port of the plain-text port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns a redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Run starts the prepared server and waits until it answers.
func (s *Server) Run() error {
	var args []string
	if s.Conf != "" {
		args = append(args, s.Conf)
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.Dir)
	args = append(args, s.Args...)
	log, err := os.Create(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			out, _ := os.ReadFile(log.Name())
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, lastLines(string(out)))
		default:
		}
		if pid, ok := serverPID(s.Addr()); ok {
			if pid != cmd.Process.Pid { // another process's server holds the port
				s.Kill()
				return fmt.Errorf("port %d belongs to another redis-server (pid %d)", s.port, pid)
			}
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("redis-server on port %d did not answer PING within 5s", s.port)
}

// serverPID returns the process id of the Redis answering at addr.
func serverPID(addr string) (int, bool) {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, false
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, false
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, false
		}
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			return pid, err == nil
		}
	}
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-3):], " | ")
}

// Kill kills the server, if it runs, and waits for it to be gone.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Pause stops the process without closing its sockets: connections hang
// and calls time out, as with a partitioned network.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	if err := s.Run(); err != nil {
		s.tb.Fatalf("restart redis-server: %v", err)
	}
}

// Calls returns how many times the server ran cmd (lower case, e.g.
// "evalsha"), from INFO commandstats.
func (s *Server) Calls() map[string]int {
	s.tb.Helper()
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		s.tb.Fatalf("INFO commandstats: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("INFO commandstats\r\n")); err != nil {
		s.tb.Fatalf("INFO commandstats: %v", err)
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		s.tb.Fatalf("INFO commandstats: bad reply %q (%v)", head, err)
	}
	size, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	buf := make([]byte, size+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		s.tb.Fatalf("INFO commandstats: %v", err)
	}
	calls := map[string]int{}
	for line := range strings.SplitSeq(string(buf), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, stats, _ := strings.Cut(rest, ":calls=")
		n, _, _ := strings.Cut(stats, ",")
		calls[name], _ = strconv.Atoi(n)
	}
	return calls
}
