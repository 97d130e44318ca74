//go:build linux

package breakglass

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServer is a redis-server started by a test: 127.0.0.1, a free port, no config file, no
// persistence, never daemonized. It is killed when the test ends, when the test binary dies
// (Pdeathsig) and, at the latest, after redisLifetime.
type redisServer struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

const redisLifetime = 2 * time.Minute

// startRedis starts redis-server ($REDIS_SERVER, else the one on PATH); the test is skipped
// when there is none.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin := os.Getenv("REDIS_SERVER")
	if bin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			t.Skip("redis-server not found (apt-get install redis-server, or set REDIS_SERVER)")
		}
		bin = p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	s := &redisServer{port: port, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	watchdog := time.AfterFunc(redisLifetime, s.kill)
	t.Cleanup(func() {
		watchdog.Stop()
		s.kill()
	})

	deadline := time.Now().Add(10 * time.Second)
	for !s.ping() {
		select {
		case <-s.done:
			t.Fatalf("redis-server exited before answering on port %d", port)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer on port %d", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *redisServer) url() string {
	return "redis://127.0.0.1:" + strconv.Itoa(s.port)
}

// ping reports whether the server answers PING with PONG.
func (s *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// kill sends SIGKILL and waits until the process is gone.
func (s *redisServer) kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

func TestRedisSharedSlot(t *testing.T) {
	fresh(t)
	srv := startRedis(t)
	set(t, "slot_url", srv.url(), "slot_timeout_ms", "5000")

	t.Run("GenerateVerifyOnce", func(t *testing.T) {
		code := mustGenerate(t)
		if err := Verify(code); err != nil {
			t.Fatalf("Verify(right code): %v", err)
		}
		wantIs(t, "second Verify", Verify(code), ErrNoPendingOTP)
	})

	t.Run("RegenerateInvalidatesTheOldCode", func(t *testing.T) {
		old := mustGenerate(t)
		code := mustGenerate(t)
		if code != old {
			wantIs(t, "Verify(old code)", Verify(old), ErrInvalid)
		}
		wantIs(t, "Verify after a wrong code", Verify(code), ErrNoPendingOTP)
	})

	t.Run("ConcurrentVerifiersExactlyOnce", func(t *testing.T) {
		const rounds, verifiers = 20, 32
		for round := 0; round < rounds; round++ {
			code := mustGenerate(t)
			start := make(chan struct{})
			errs := make([]error, verifiers)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					errs[i] = Verify(code)
				}(i)
			}
			close(start)
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrNoPendingOTP):
				default:
					t.Errorf("round %d: unexpected %v", round, err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d verifiers got nil, want exactly 1", round, ok)
			}
		}
	})

	t.Run("KilledServerIsABackendError", func(t *testing.T) {
		code := mustGenerate(t)
		srv.kill()
		began := time.Now()
		err := Verify(code)
		wantIs(t, "Verify with the server killed", err, ErrBackend)
		if errors.Is(err, ErrNoPendingOTP) || errors.Is(err, ErrInvalid) {
			t.Errorf("Verify: %v is a verify outcome, want a backend error", err)
		}
		_, err = Generate()
		wantIs(t, "Generate with the server killed", err, ErrBackend)
		wantIs(t, "Clear with the server killed", Clear(), ErrBackend)
		if d := time.Since(began); d > 3*time.Second {
			t.Errorf("three calls to a dead server took %v (nothing listens: expected a fast refusal)", d)
		}

		// Back to the in-process slot: it needs no server.
		if err := Unset("slot_url"); err != nil {
			t.Fatal(err)
		}
		code = mustGenerate(t)
		if err := Verify(code); err != nil {
			t.Fatalf("in-process Verify after Unset(slot_url): %v", err)
		}
	})
}
