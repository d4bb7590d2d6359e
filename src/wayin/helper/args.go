// Command-line arguments shared by every subcommand.

package main

import (
	"path"
	"strconv"
	"strings"
	"time"
)

// defaultMaxSize is what put accepts unless -max-size says otherwise.
const defaultMaxSize = int64(4) << 30

type cmdArgs struct {
	pos      []string
	mode     uint32
	hasMode  bool
	excludes []string
	maxSize  int64
	waitExec time.Duration
	probe    *probeSpec
}

// parseArgs accepts flags before or after operands (-flag V, -flag=V, and the
// same with --); "--" ends flags.
func parseArgs(in []string, allowed ...string) (cmdArgs, error) {
	a := cmdArgs{maxSize: defaultMaxSize}
	ok := map[string]bool{}
	for _, f := range allowed {
		ok[f] = true
	}
	for i := 0; i < len(in); i++ {
		s := in[i]
		if s == "--" {
			a.pos = append(a.pos, in[i+1:]...)
			break
		}
		if len(s) < 2 || s[0] != '-' {
			a.pos = append(a.pos, s)
			continue
		}
		name := strings.TrimLeft(s, "-")
		val, hasVal := "", false
		if k, v, found := strings.Cut(name, "="); found {
			name, val, hasVal = k, v, true
		}
		if !ok[name] {
			return a, fail("usage", "unknown flag %s", s)
		}
		if !hasVal {
			if i+1 >= len(in) {
				return a, fail("usage", "flag %s needs a value", s)
			}
			i++
			val = in[i]
		}
		switch name {
		case "mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil || m > 0o7777 {
				return a, fail("usage", "bad -mode %q (want octal, e.g. 0755)", val)
			}
			a.mode, a.hasMode = uint32(m), true
		case "exclude":
			if _, err := path.Match(val, ""); err != nil {
				return a, fail("usage", "bad -exclude pattern %q: %v", val, err)
			}
			a.excludes = append(a.excludes, val)
		case "wait-exec":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return a, fail("usage", "bad -wait-exec %q (want a duration, e.g. 5s)", val)
			}
			a.waitExec = d
		case "probe":
			p, err := parseProbe(val)
			if err != nil {
				return a, err
			}
			a.probe = &p
		case "max-size":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return a, fail("usage", "bad -max-size %q", val)
			}
			a.maxSize = n
		}
	}
	return a, nil
}

func wantOperands(a cmdArgs, n int, usage string) error {
	if len(a.pos) != n {
		return fail("usage", "usage: helper %s", usage)
	}
	for _, p := range a.pos {
		if p == "" {
			return fail("usage", "usage: helper %s (empty operand)", usage)
		}
	}
	return nil
}
