package main

// Shared test helpers: run the helper in-process, read its answers, build
// payloads. Every test here goes through run(), the same entry point as the
// binary, so exit codes, the JSON status line and stderr are all checked.

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// result is what one helper invocation produced.
type result struct {
	code   int
	stdout []byte
	stderr string
}

// runHelper runs the helper with args and stdin (nil: empty).
func runHelper(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var stdout, stderr bytes.Buffer
	code := run(args, stdin, &stdout, &stderr)
	return result{code: code, stdout: stdout.Bytes(), stderr: stderr.String()}
}

// status decodes the one JSON status line on stdout.
func (r result) status(t *testing.T) map[string]interface{} {
	t.Helper()
	out := bytes.TrimSuffix(r.stdout, []byte("\n"))
	if len(out) == 0 || bytes.Contains(out, []byte("\n")) {
		t.Fatalf("want exactly one status line, got %q (exit %d, stderr %q)", r.stdout, r.code, r.stderr)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("status line %q is not JSON: %v", out, err)
	}
	return m
}

// ok checks a successful run of a subcommand that reports success in its
// status line (put, seed, rm): exit 0, no stderr, {"ok":true,...}.
func (r result) ok(t *testing.T) map[string]interface{} {
	t.Helper()
	s := r.answered(t)
	if s["ok"] != true {
		t.Fatalf(`want {"ok":true,...}, got %v`, s)
	}
	return s
}

// answered checks a successful run of hash or version, whose status lines
// carry their answer and no "ok" field: exit 0, no stderr, one status line
// that is not a failure's.
func (r result) answered(t *testing.T) map[string]interface{} {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("want exit 0 and no stderr, got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	s := r.status(t)
	if _, failed := s["error"]; failed {
		t.Fatalf("exit 0 with a failure's status line %v", s)
	}
	return s
}

// failed checks a failed run: exit code, the status line's error code and
// the stderr message naming the subcommand and the code.
func (r result) failed(t *testing.T, cmd string, exit int, code string) map[string]interface{} {
	t.Helper()
	if r.code != exit {
		t.Fatalf("want exit %d, got %d (stdout %q, stderr %q)", exit, r.code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "gohot-helper "+cmd+": "+code+": ") {
		t.Fatalf("stderr %q does not start with %q", r.stderr, "gohot-helper "+cmd+": "+code+": ")
	}
	if cmd == "get" {
		return nil
	}
	s := r.status(t)
	if s["ok"] != false || s["error"] != code || s["message"] == "" {
		t.Fatalf("want {ok:false, error:%q, message:…}, got %v", code, s)
	}
	return s
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func crc(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// noise is deterministic pseudo-random content.
func noise(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// headerLine is a put header; fields override or add to the defaults.
func headerLine(fields map[string]interface{}) []byte {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// fullPayload is a correct full payload for content.
func fullPayload(content []byte) []byte {
	body := gz(content)
	h := headerLine(map[string]interface{}{"v": protocol, "kind": "full", "size": len(content), "sha256": sha(content), "crc32": crc(content), "body": len(body)})
	return append(h, body...)
}

// deltaPayload is a delta payload turning base into content with ops.
func deltaPayload(base, content, ops []byte) []byte {
	body := gz(ops)
	h := headerLine(map[string]interface{}{
		"v": protocol, "kind": "delta", "size": len(content), "sha256": sha(content), "crc32": crc(content),
		"base_size": len(base), "base_sha256": sha(base), "body": len(body),
	})
	return append(h, body...)
}

// record encodes one delta record: seek, then add bytes (differences
// against the base) and literal bytes.
func record(seek int64, add, lit []byte) []byte {
	var b []byte
	b = binary.AppendVarint(b, seek)
	b = binary.AppendUvarint(b, uint64(len(add)))
	b = binary.AppendUvarint(b, uint64(len(lit)))
	if len(add) > 0 {
		// One run: no bytes kept as they are, then every difference.
		b = binary.AppendUvarint(b, 0)
		b = binary.AppendUvarint(b, uint64(len(add)))
		b = append(b, add...)
	}
	return append(b, lit...)
}

// diff is the add bytes that turn from into to (same length).
func diff(to, from []byte) []byte {
	d := make([]byte, len(to))
	for i := range to {
		d[i] = to[i] - from[i]
	}
	return d
}

// leftovers lists the helper's temporary files under dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".gohot-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func writeFile(t *testing.T, p string, content []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func modeOf(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

// tripwire is the part of stdin after a framed input: the helper must
// never read it (and gets EOF if it does, so a bug fails instead of hanging).
type tripwire struct{ touched bool }

func (w *tripwire) Read(p []byte) (int, error) {
	w.touched = true
	return 0, io.EOF
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
