package main

import (
	"runtime"
	"testing"
)

func TestVersionNamesTheProtocol(t *testing.T) {
	for _, spelling := range []string{"version", "-version", "--version"} {
		s := runHelper(t, nil, spelling).answered(t)
		if s["name"] != "gohot-helper" || s["protocol"] != float64(protocol) || s["go"] != runtime.Version() ||
			s["os"] != runtime.GOOS || s["arch"] != runtime.GOARCH {
			t.Fatalf("%s: %v", spelling, s)
		}
	}
	if protocol != 3 {
		t.Fatalf("protocol %d: gohot (HELPER_PROTOCOL) speaks 3", protocol)
	}
}

func TestUsageErrorsExitTwoWithAStatusLine(t *testing.T) {
	runHelper(t, nil).failed(t, "helper", exitUsage, "usage")
	s := runHelper(t, nil, "frobnicate").failed(t, "frobnicate", exitUsage, "usage")
	if s["message"] != `unknown subcommand "frobnicate" (want put, hash, list, get, seed, rm, serving, serve or version)` {
		t.Fatalf("message %q", s["message"])
	}
}

func TestFinishMapsCodesToExitStatus(t *testing.T) {
	for code, exit := range map[string]int{"usage": 2, "base-mismatch": 3, "bad-payload": 1, "io": 1} {
		if f := fail(code, "x").(*failure); f.exit != exit {
			t.Errorf("%s exits %d, want %d", code, f.exit, exit)
		}
	}
	if err := ioFail(fail("usage", "x")); err.(*failure).code != "usage" {
		t.Error("ioFail rewrapped a failure")
	}
}
