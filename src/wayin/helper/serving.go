// After a put with -wait-exec: the process the supervisor starts from the
// new file, watched from inside the container until it answers the probe
// (-probe) or exits — so gohot learns both in the put's one reply, and no
// probe from outside (a port-forward on a cluster) sits in a reload's path.

package main

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// pollStart is how often /proc is read until the new process shows:
	// often, so that an app which dies within milliseconds is still seen.
	pollStart = time.Millisecond
	// pollServe is how often the probe is tried once it runs.
	pollServe = 3 * time.Millisecond
	// startGrace: when, after the rename, neither the old binary nor the new
	// one has run for this long while the supervisor is there, the new
	// process came and went between two looks (or was never started).
	// watchexec starts it within milliseconds of stopping the old one.
	startGrace = time.Second
	// probeIOTimeout bounds one probe's connect, request and first bytes.
	probeIOTimeout = 2 * time.Second
)

// cmdServing: serving DEST -wait-exec DUR [-probe http:PORT|tcp:PORT] waits,
// as put does after its rename, for a process running DEST and, with the
// probe, until it answers: how gohot learns when a session's first start
// serves, with no put. Prints {"ok":true,"pid":N,"answer_ms":M,...}.
func cmdServing(argv []string, stdout io.Writer) error {
	a, err := parseArgs(argv, "wait-exec", "probe")
	if err != nil {
		return err
	}
	if err := wantOperands(a, 1, "serving DEST -wait-exec DUR [-probe http:PORT|tcp:PORT]"); err != nil {
		return err
	}
	if a.waitExec <= 0 {
		return fail("usage", "serving needs -wait-exec DUR (how long to wait)")
	}
	status := map[string]interface{}{"ok": true}
	awaitServing(filepath.Clean(a.pos[0]), a.waitExec, a.probe).report(status, a.probe != nil)
	return writeJSON(stdout, status)
}

// supervisorName is the supervisor's executable (tests play it themselves).
var supervisorName = "watchexec"

// probeSpec is what -probe asks for: "http:PORT" (any HTTP answer from
// 127.0.0.1:PORT, the app's own network namespace) or "tcp:PORT" (a
// connection accepted).
type probeSpec struct {
	http bool
	port int
}

func parseProbe(s string) (probeSpec, error) {
	kind, port, ok := strings.Cut(s, ":")
	n, err := strconv.Atoi(port)
	if !ok || err != nil || n < 1 || n > 65535 || (kind != "http" && kind != "tcp") {
		return probeSpec{}, fail("usage", "bad -probe %q (want http:PORT or tcp:PORT)", s)
	}
	return probeSpec{http: kind == "http", port: n}, nil
}

// served is what became of the new process, for put's status line.
type served struct {
	pid     int           // 0: no process ran the new file in time (or seen only gone)
	restart time.Duration // rename → the new process seen
	answer  time.Duration // seen → answered the probe (answered only)
	// answered: the probe succeeded (or there was no probe and it started).
	answered bool
	// exited: the new process is gone without answering; how, when known.
	exited     bool
	exitStatus string
	exitAfter  time.Duration // rename → seen gone
}

// report adds the outcome to a put status.
func (s served) report(status map[string]interface{}, probing bool) {
	status["restart_ms"] = s.restart.Milliseconds()
	if s.pid > 0 {
		status["pid"] = s.pid
	}
	if probing && s.answered {
		status["answer_ms"] = s.answer.Milliseconds()
	}
	if s.exited {
		status["exited"] = s.exitStatus
		status["exit_ms"] = s.exitAfter.Milliseconds()
	}
}

// awaitServing waits up to timeout (from the rename, just done) for a
// process running dest, then, with a probe, until it answers. It returns as
// soon as the outcome is known: started (no probe), answered, exited, or
// the timeout.
func awaitServing(dest string, timeout time.Duration, probe *probeSpec) served {
	start := time.Now()
	deadline := start.Add(timeout)
	watched := supervised()
	var s served
	var idleSince time.Time // since when nothing runs dest, old or new
	for {
		now := time.Now()
		if s.pid == 0 {
			newPid, old := processesOf(dest)
			switch {
			case newPid > 0:
				s.pid, s.restart = newPid, now.Sub(start)
				if probe == nil {
					s.answered = true
					return s
				}
				continue
			case old || !watched:
				idleSince = time.Time{}
			case idleSince.IsZero():
				idleSince = now
			case now.Sub(idleSince) >= startGrace:
				s.restart = now.Sub(start)
				s.exited, s.exitAfter = true, now.Sub(start)
				return s
			}
			if now.After(deadline) {
				s.restart = now.Sub(start)
				return s
			}
			time.Sleep(pollStart)
			continue
		}
		if gone, status := processEnded(s.pid); gone {
			s.exited, s.exitStatus, s.exitAfter = true, status, now.Sub(start)
			return s
		}
		if probeAnswers(*probe) {
			s.answered, s.answer = true, time.Since(start)-s.restart
			return s
		}
		if now.After(deadline) {
			return s
		}
		time.Sleep(pollServe)
	}
}

// processesOf reads /proc: the pid of a process running the file now at
// dest (0: none), and whether one still runs a file dest replaced (which
// /proc/PID/exe shows as "dest (deleted)": only a process started from the
// new file matches dest exactly).
func processesOf(dest string) (pid int, old bool) {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == self {
			continue
		}
		switch target, _ := os.Readlink("/proc/" + e.Name() + "/exe"); target {
		case dest:
			return p, old
		case dest + " (deleted)":
			old = true
		}
	}
	return 0, old
}

// supervised says whether watchexec runs in this container: only then does
// "nothing runs the binary" mean the new process came and went.
func supervised() bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && filepath.Base(target) == supervisorName {
			return true
		}
	}
	return false
}

// processEnded says whether pid has exited, with its status when the
// kernel still holds it (a zombie its parent has not reaped yet:
// /proc/PID/stat's exit_code field, Linux 3.5 and later).
func processEnded(pid int) (bool, string) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true, ""
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return false, ""
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) == 0 || (fields[0] != "Z" && fields[0] != "X") {
		return false, ""
	}
	// fields[0] is field 3 (state); exit_code is field 52.
	if len(fields) < 50 {
		return true, ""
	}
	code, err := strconv.Atoi(fields[49])
	if err != nil {
		return true, ""
	}
	return true, waitStatus(code)
}

// waitStatus describes a wait(2) status as Go's os.ProcessState does.
func waitStatus(code int) string {
	ws := syscall.WaitStatus(code)
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	}
	return ""
}

// probeAnswers tries the probe once against 127.0.0.1 (the app's network
// namespace is the helper's). Plain syscalls, not package net: the helper
// stays small, and a loopback connect never blocks.
func probeAnswers(p probeSpec) bool {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	tv := syscall.NsecToTimeval(probeIOTimeout.Nanoseconds())
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: p.port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return false
	}
	if !p.http {
		return true
	}
	req := "GET / HTTP/1.0\r\nHost: 127.0.0.1:" + strconv.Itoa(p.port) + "\r\nUser-Agent: gohot-helper\r\n\r\n"
	// MSG_NOSIGNAL: an app that closes at once must not stop the helper with
	// SIGPIPE. SendmsgN, not Sendto: Go 1.19's Sendto dereferences a nil address.
	for out := []byte(req); len(out) > 0; {
		n, err := syscall.SendmsgN(fd, out, nil, nil, syscall.MSG_NOSIGNAL)
		if err != nil || n <= 0 {
			return false
		}
		out = out[n:]
	}
	// Any HTTP answer will do: the status line's first bytes.
	var got []byte
	buf := make([]byte, 64)
	for len(got) < 5 {
		n, err := syscall.Read(fd, buf)
		if err != nil || n <= 0 {
			return false
		}
		got = append(got, buf[:n]...)
	}
	return string(got[:5]) == "HTTP/"
}
