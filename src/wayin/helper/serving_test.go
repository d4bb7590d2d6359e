package main

// put -wait-exec -probe against real processes: the test plays watchexec
// (it starts the file put wrote, as a child), and the "app" is this test
// binary itself, written to DEST by put and run in the mode GOHOT_TEST_APP
// names.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv("GOHOT_TEST_APP"); mode != "" {
		os.Exit(testApp(mode))
	}
	os.Exit(m.Run())
}

// testApp is the app the tests start: "http:PORT" serves HTTP, "tcp:PORT"
// accepts connections, "exit:N" exits with N at once, "crash:N" exits with
// N after running for a moment (long enough to be seen running), "sleep"
// runs without listening.
func testApp(mode string) int {
	kind, arg, _ := strings.Cut(mode, ":")
	switch kind {
	case "http":
		_ = http.ListenAndServe("127.0.0.1:"+arg, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, "hello")
		}))
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:"+arg)
		if err != nil {
			return 1
		}
		for {
			c, err := l.Accept()
			if err != nil {
				return 1
			}
			c.Close()
		}
	case "exit":
		n, _ := strconv.Atoi(arg)
		return n
	case "crash":
		time.Sleep(200 * time.Millisecond)
		n, _ := strconv.Atoi(arg)
		return n
	case "sleep":
		time.Sleep(time.Minute)
	}
	return 0
}

// freePort is a port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// supervise plays watchexec: once DEST exists, it starts it with
// GOHOT_TEST_APP=mode. reap says whether the child is waited for at once
// (gone without a trace) or only when the test ends (a zombie until then,
// its exit status readable). The test binary counts as the supervisor.
func supervise(t *testing.T, dest, mode string, reap bool) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	old := supervisorName
	supervisorName = filepath.Base(self)
	t.Cleanup(func() { supervisorName = old })
	cmd := exec.Command(dest)
	cmd.Env = append(os.Environ(), "GOHOT_TEST_APP="+mode)
	started := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := os.Stat(dest); err == nil && st.Mode()&0o100 != 0 {
				err := cmd.Start()
				started <- err
				if err == nil && reap {
					_ = cmd.Wait()
				}
				return
			}
			time.Sleep(time.Millisecond)
		}
		started <- fmt.Errorf("%s never appeared", dest)
	}()
	t.Cleanup(func() {
		if err := <-started; err != nil {
			t.Errorf("starting the app: %v", err)
			return
		}
		_ = cmd.Process.Kill()
		if !reap {
			_ = cmd.Wait()
		}
	})
	return cmd
}

// putApp puts this test binary at a new DEST with -wait-exec and extra args.
func putApp(t *testing.T, mode string, reap bool, args ...string) (map[string]interface{}, *exec.Cmd) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "app")
	cmd := supervise(t, dest, mode, reap)
	content := readFile(t, self)
	argv := append([]string{"put", dest, "-wait-exec", "60s"}, args...)
	return runHelper(t, bytes.NewReader(fullPayload(content)), argv...).ok(t), cmd
}

func TestPutProbeReportsTheNewProcessAnswering(t *testing.T) {
	for _, kind := range []string{"http", "tcp"} {
		port := strconv.Itoa(freePort(t))
		s, cmd := putApp(t, kind+":"+port, false, "-probe", kind+":"+port)
		if s["pid"] != float64(cmd.Process.Pid) {
			t.Fatalf("%s: pid %v, the app is %d: %v", kind, s["pid"], cmd.Process.Pid, s)
		}
		if _, ok := s["answer_ms"]; !ok {
			t.Fatalf("%s: no answer_ms: %v", kind, s)
		}
		if _, ok := s["exited"]; ok {
			t.Fatalf("%s: exited: %v", kind, s)
		}
	}
}

// The app runs, then exits instead of answering: put says so, with its
// exit status while the kernel still holds it (its parent has not reaped
// it), as soon as it happened — the wait (60 s) was not spent.
func TestPutProbeReportsAnAppThatExitsWithItsStatus(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	s, _ := putApp(t, "crash:3", false, "-probe", "http:"+port)
	if s["exited"] != "exit status 3" {
		t.Fatalf("exited %v, want exit status 3: %v", s["exited"], s)
	}
	if _, ok := s["answer_ms"]; ok {
		t.Fatalf("answered: %v", s)
	}
	if ms, ok := s["exit_ms"].(float64); !ok || ms >= 60000 {
		t.Fatalf("exit_ms %v: the exit was not reported before the wait ended", s["exit_ms"])
	}
}

// An app gone before the helper could tell its status (reaped at once,
// perhaps never seen running): still reported as exited, within the grace.
func TestPutProbeReportsAnAppThatCameAndWent(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	s, _ := putApp(t, "exit:3", true, "-probe", "http:"+port)
	if _, ok := s["exited"]; !ok {
		t.Fatalf("not reported as exited: %v", s)
	}
	if ms, ok := s["exit_ms"].(float64); !ok || ms >= 60000 {
		t.Fatalf("exit_ms %v: the exit was not reported before the wait ended", s["exit_ms"])
	}
}

// Running but never answering: the wait runs out, the pid is reported,
// neither an answer nor an exit.
func TestPutProbeTimesOutOnAnAppThatDoesNotAnswer(t *testing.T) {
	self, _ := os.Executable()
	dest := filepath.Join(t.TempDir(), "app")
	supervise(t, dest, "sleep", false)
	port := strconv.Itoa(freePort(t))
	s := runHelper(t, bytes.NewReader(fullPayload(readFile(t, self))), "put", dest, "-wait-exec", "300ms", "-probe", "http:"+port).ok(t)
	if _, ok := s["pid"]; !ok {
		t.Fatalf("no pid: %v", s)
	}
	for _, k := range []string{"answer_ms", "exited"} {
		if _, ok := s[k]; ok {
			t.Fatalf("%s in %v", k, s)
		}
	}
}

// serving, with no put: an app already running from DEST (a session's first
// start) is found and waited for until it answers; one that never appears
// is not in time; without -wait-exec it is a usage error.
func TestServingWaitsForTheRunningAppToAnswer(t *testing.T) {
	self, _ := os.Executable()
	dest := filepath.Join(t.TempDir(), "app")
	port := strconv.Itoa(freePort(t))
	cmd := supervise(t, dest, "http:"+port, false)
	// Whole before it is seen (the supervisor starts it at once).
	if err := os.WriteFile(dest+".tmp", readFile(t, self), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dest+".tmp", dest); err != nil {
		t.Fatal(err)
	}
	s := runHelper(t, nil, "serving", dest, "-wait-exec", "60s", "-probe", "http:"+port).ok(t)
	if _, ok := s["answer_ms"]; !ok {
		t.Fatalf("no answer_ms: %v", s)
	}
	if s["pid"] != float64(cmd.Process.Pid) {
		t.Fatalf("pid %v, the app is %d: %v", s["pid"], cmd.Process.Pid, s)
	}
	nothing := filepath.Join(t.TempDir(), "app")
	s = runHelper(t, nil, "serving", nothing, "-wait-exec", "50ms", "-probe", "http:"+port).ok(t)
	if _, ok := s["pid"]; ok {
		t.Fatalf("a pid for a file nothing runs: %v", s)
	}
	runHelper(t, nil, "serving", dest).failed(t, "serving", exitUsage, "usage")
}

func TestProbeSpecs(t *testing.T) {
	for _, good := range []string{"http:8080", "tcp:1", "tcp:65535"} {
		if _, err := parseProbe(good); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	dest := filepath.Join(t.TempDir(), "app")
	for _, bad := range []string{"8080", "http:", "http:0", "tcp:65536", "udp:53", "http:80/x"} {
		runHelper(t, bytes.NewReader(fullPayload([]byte("x"))), "put", dest, "-wait-exec", "1s", "-probe", bad).failed(t, "put", exitUsage, "usage")
	}
	if st, err := os.Stat(dest); err == nil {
		t.Fatalf("a refused put wrote %s (%v)", dest, st.Mode())
	}
}

func TestWaitStatus(t *testing.T) {
	if got := waitStatus(2 << 8); got != "exit status 2" {
		t.Errorf("exit 2: %q", got)
	}
	if got := waitStatus(9); got != "signal: killed" {
		t.Errorf("SIGKILL: %q", got)
	}
}
