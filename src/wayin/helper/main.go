// Dispatch, status lines and exit codes; the protocol is described in doc.go.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

const (
	protocol = 3

	exitFail         = 1
	exitUsage        = 2
	exitBaseMismatch = 3

	ioChunk = 64 << 10 // buffer size for stdin, stdout and file copies
)

// failure is an error with a machine-readable code and an exit status.
type failure struct {
	code string
	exit int
	msg  string
}

func (f *failure) Error() string { return f.msg }

func fail(code string, format string, args ...interface{}) error {
	exit := exitFail
	switch code {
	case "usage":
		exit = exitUsage
	case "base-mismatch":
		exit = exitBaseMismatch
	}
	return &failure{code: code, exit: exit, msg: fmt.Sprintf(format, args...)}
}

func ioFail(err error) error {
	var f *failure
	if errors.As(err, &f) {
		return err
	}
	return &failure{code: "io", exit: exitFail, msg: err.Error()}
}

func main() {
	if as := personality(os.Args[0]); as != nil {
		os.Exit(as(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one helper invocation (args without the program name) and
// returns its exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		return finish("", fail("usage", "usage: helper put|hash|list|get|seed|rm|serving|serve|version ..."), stdout, stderr)
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		return cmdServe(rest, stdin, stdout, stderr)
	case "put":
		// put reports its own failure: the status line comes before the
		// rest of the payload is drained.
		return cmdPut(rest, stdin, stdout, stderr)
	case "hash":
		err = cmdHash(rest, stdout)
	case "list":
		err = cmdList(rest, stdout)
	case "get":
		err = cmdGet(rest, stdin, stdout)
	case "seed":
		err = cmdSeed(rest, stdout)
	case "rm":
		err = cmdRm(rest, stdout)
	case "serving":
		err = cmdServing(rest, stdout)
	case "version", "-version", "--version":
		err = writeJSON(stdout, map[string]interface{}{
			"name": "gohot-helper", "protocol": protocol,
			"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		})
	default:
		err = fail("usage", "unknown subcommand %q (want put, hash, list, get, seed, rm, serving, serve or version)", cmd)
	}
	return finish(cmd, err, stdout, stderr)
}

// finish reports err (if any) and returns the exit code. Every subcommand
// except get also prints a JSON status line on stdout; get's stdout is a
// binary stream, which a missing end line marks as failed.
func finish(cmd string, err error, stdout, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	f, ok := err.(*failure)
	if !ok {
		f = &failure{code: "io", exit: exitFail, msg: err.Error()}
	}
	if cmd != "get" {
		_ = writeJSON(stdout, map[string]interface{}{"ok": false, "error": f.code, "message": f.msg})
	}
	if cmd == "" {
		cmd = "helper"
	}
	fmt.Fprintf(stderr, "gohot-helper %s: %s: %s\n", cmd, f.code, f.msg)
	return f.exit
}

func writeJSON(w io.Writer, v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return ioFail(err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
