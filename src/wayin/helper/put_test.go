package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPutFullCreatesMissingDirectoriesAndSetsMode(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "ko-app", "sub", "app")
	content := noise(300<<10, 1)
	s := runHelper(t, bytes.NewReader(fullPayload(content)), "put", dest, "-mode", "0640").ok(t)
	if s["ok"] != true || s["kind"] != "full" || s["bytes"] != float64(len(content)) || s["sha256"] != sha(content) {
		t.Fatalf("status %v", s)
	}
	if _, ok := s["write_ms"]; !ok {
		t.Fatalf("status has no write_ms: %v", s)
	}
	if !bytes.Equal(readFile(t, dest), content) {
		t.Fatal("content differs")
	}
	if m := modeOf(t, dest).Perm(); m != 0o640 {
		t.Fatalf("mode %o, want 640", m)
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("temporary files left: %v", l)
	}
}

func TestPutDefaultModeAndFlagsAfterOrBeforeTheOperand(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app")
	runHelper(t, bytes.NewReader(fullPayload([]byte("one"))), "put", dest).ok(t)
	if m := modeOf(t, dest).Perm(); m != 0o755 {
		t.Fatalf("default mode %o, want 755", m)
	}
	runHelper(t, bytes.NewReader(fullPayload([]byte("two"))), "put", "--mode=4711", dest).ok(t)
	if m := modeOf(t, dest); m.Perm() != 0o711 || m&os.ModeSetuid == 0 {
		t.Fatalf("mode %v, want setuid 711", m)
	}
	if got := readFile(t, dest); string(got) != "two" {
		t.Fatalf("content %q", got)
	}
}

func TestPutDeltaAppliesToTheCurrentContent(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app")
	base := noise(200<<10, 2)
	writeFile(t, dest, base, 0o755)

	// new = base[1000:90000] with a few bytes changed, a literal, then base[150000:].
	part1 := append([]byte(nil), base[1000:90000]...)
	part1[10], part1[5000] = part1[10]+1, part1[5000]^0xff
	lit := []byte("a literal that is not in the base")
	part2 := base[150000:]
	content := append(append(append([]byte(nil), part1...), lit...), part2...)
	ops := append(record(1000, diff(part1, base[1000:90000]), lit), record(150000-90000, diff(part2, part2), nil)...)

	s := runHelper(t, bytes.NewReader(deltaPayload(base, content, ops)), "put", dest).ok(t)
	if s["kind"] != "delta" || s["bytes"] != float64(len(content)) || s["sha256"] != sha(content) {
		t.Fatalf("status %v", s)
	}
	if !bytes.Equal(readFile(t, dest), content) {
		t.Fatal("content differs")
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("temporary files left: %v", l)
	}
}

func TestPutDeltaOnTheWrongBaseIsABaseMismatch(t *testing.T) {
	base := noise(4096, 3)
	content := append([]byte("x"), base...)
	payload := deltaPayload(base, content, append(record(0, nil, []byte("x")), record(0, diff(base, base), nil)...))

	cases := map[string][]byte{
		"other content, same size": noise(4096, 4),
		"other size":               base[:4000],
		"missing":                  nil,
	}
	for name, current := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "app")
			if current != nil {
				writeFile(t, dest, current, 0o755)
			}
			r := runHelper(t, bytes.NewReader(payload), "put", dest)
			r.failed(t, "put", exitBaseMismatch, "base-mismatch")
			if current == nil {
				if _, err := os.Stat(dest); !os.IsNotExist(err) {
					t.Fatalf("dest was created: %v", err)
				}
			} else if !bytes.Equal(readFile(t, dest), current) {
				t.Fatal("dest changed")
			}
			if l := leftovers(t, dir); len(l) != 0 {
				t.Fatalf("temporary files left: %v", l)
			}
		})
	}

	// The right base works.
	dir := t.TempDir()
	dest := filepath.Join(dir, "app")
	writeFile(t, dest, base, 0o755)
	runHelper(t, bytes.NewReader(payload), "put", dest).ok(t)
	if !bytes.Equal(readFile(t, dest), content) {
		t.Fatal("content differs")
	}
}

// corruptPayloads are payloads that must fail with the given code, for
// DEST holding base. full is a good full payload's parts to spoil.
func corruptPayloads(base []byte) map[string]struct {
	payload []byte
	code    string
} {
	content := noise(50000, 5)
	good := gz(content)
	full := func(fields map[string]interface{}, body []byte) []byte {
		h := map[string]interface{}{"v": protocol, "kind": "full", "size": len(content), "sha256": sha(content), "crc32": crc(content), "body": len(body)}
		for k, v := range fields {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return append(headerLine(h), body...)
	}
	delta := func(size int, ops []byte) []byte {
		body := gz(ops)
		h := map[string]interface{}{"v": protocol, "kind": "delta", "size": size, "sha256": sha(content), "crc32": crc(content),
			"base_size": len(base), "base_sha256": sha(base), "body": len(body)}
		return append(headerLine(h), body...)
	}
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-6] ^= 0xff
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0xff
	type c = struct {
		payload []byte
		code    string
	}
	return map[string]c{
		"empty stdin":             {nil, "bad-payload"},
		"header is not JSON":      {[]byte("hello\n"), "bad-payload"},
		"header without newline":  {[]byte(`{"v":2}`), "bad-payload"},
		"header too long":         {append(bytes.Repeat([]byte(" "), 5000), '\n'), "bad-payload"},
		"wrong version":           {full(map[string]interface{}{"v": 1}, good), "bad-payload"},
		"no size":                 {full(map[string]interface{}{"size": nil}, good), "bad-payload"},
		"negative size":           {full(map[string]interface{}{"size": -1}, good), "bad-payload"},
		"upper-case sha256":       {full(map[string]interface{}{"sha256": strings.ToUpper(sha(content))}, good), "bad-payload"},
		"no body length":          {full(map[string]interface{}{"body": nil}, good), "bad-payload"},
		"unknown kind":            {full(map[string]interface{}{"kind": "patch"}, good), "bad-payload"},
		"delta without base":      {full(map[string]interface{}{"kind": "delta"}, good), "bad-payload"},
		"body is not gzip":        {full(nil, []byte("plain text, not gzip")), "bad-payload"},
		"truncated body":          {full(map[string]interface{}{"body": len(good)}, good[:len(good)/2]), "bad-payload"},
		"body length too short":   {full(map[string]interface{}{"body": len(good) - 10}, good), "bad-payload"},
		"corrupt deflate data":    {full(nil, flipped), "bad-payload"},
		"bad gzip CRC":            {full(nil, badCRC), "bad-payload"},
		"wrong crc32":             {full(map[string]interface{}{"crc32": crc([]byte("other"))}, good), "hash-mismatch"},
		"no crc32":                {full(map[string]interface{}{"crc32": nil}, good), "bad-payload"},
		"more than size":          {full(map[string]interface{}{"size": len(content) - 1}, good), "bad-payload"},
		"less than size":          {full(map[string]interface{}{"size": len(content) + 1}, good), "bad-payload"},
		"data after gzip member":  {full(map[string]interface{}{"body": len(good) + 3}, append(append([]byte(nil), good...), "xyz"...)), "bad-payload"},
		"second gzip member":      {full(map[string]interface{}{"body": 2 * len(good)}, append(append([]byte(nil), good...), good...)), "bad-payload"},
		"delta seeks before base": {delta(10, record(-1, nil, []byte("0123456789"))), "bad-payload"},
		"delta seeks past base":   {delta(10, record(int64(len(base))+1, nil, []byte("0123456789"))), "bad-payload"},
		"delta reads past base":   {delta(10, record(int64(len(base))-5, make([]byte, 10), nil)), "bad-payload"},
		"delta writes past size":  {delta(10, record(0, nil, []byte("0123456789AB"))), "bad-payload"},
		"empty delta record":      {delta(10, record(0, nil, nil)), "bad-payload"},
		"delta ops cut short":     {delta(10, record(0, nil, []byte("0123456789"))[:8]), "bad-payload"},
		"delta record after size": {delta(10, append(record(0, nil, []byte("0123456789")), record(0, nil, []byte("x"))...)), "bad-payload"},
		"delta hash mismatch":     {delta(10, record(0, nil, []byte("0123456789"))), "hash-mismatch"},
	}
}

func TestPutCorruptPayloadsLeaveDestUntouched(t *testing.T) {
	base := noise(20000, 6)
	for name, c := range corruptPayloads(base) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "app")
			writeFile(t, dest, base, 0o751)
			runHelper(t, bytes.NewReader(c.payload), "put", dest, "-max-size", "1000000").failed(t, "put", exitFail, c.code)
			if !bytes.Equal(readFile(t, dest), base) || modeOf(t, dest).Perm() != 0o751 {
				t.Fatal("dest changed")
			}
			if l := leftovers(t, dir); len(l) != 0 {
				t.Fatalf("temporary files left: %v", l)
			}
		})
	}
}

func TestPutRefusesMoreThanMaxSize(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app")
	runHelper(t, bytes.NewReader(fullPayload(noise(2000, 7))), "put", dest, "-max-size", "1999").failed(t, "put", exitFail, "too-large")
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("dest exists: %v", err)
	}
	runHelper(t, bytes.NewReader(fullPayload(noise(2000, 7))), "put", dest, "-max-size", "2000").ok(t)
}

// The payload is framed by the header's body length: the helper reads
// exactly header + body, whether it succeeds or fails once the header is
// read (it then drains the rest of the body), and never touches what
// follows on stdin.
func TestPutReadsExactlyTheAnnouncedBody(t *testing.T) {
	base := noise(20000, 8)
	junk := noise(1<<20, 10) // incompressible: the body stays about 1 MiB
	early := func(body []byte) []byte {
		h := headerLine(map[string]interface{}{"v": protocol, "kind": "delta", "size": 10, "sha256": sha(nil), "crc32": 0,
			"base_size": len(base), "base_sha256": sha(base), "body": len(body)})
		return append(h, body...)
	}
	payloads := map[string][]byte{
		"full":  fullPayload(noise(100000, 9)),
		"delta": deltaPayload(base, base[:100], record(0, make([]byte, 100), nil)),
		// Failures long before the end of the body: the rest is drained.
		"failing early: not gzip":       early(junk),
		"failing early: bad 1st record": early(gz(append(record(-1, nil, []byte("0123456789")), junk...))),
	}
	for name, c := range corruptPayloads(base) {
		var h putHeader
		if i := bytes.IndexByte(c.payload, '\n'); i > 0 && readHeaderOK(c.payload[:i+1], &h) && *h.Body == int64(len(c.payload)-i-1) {
			payloads["failing: "+name] = c.payload
		}
	}
	if len(payloads) < 10 {
		t.Fatalf("only %d payloads with a valid frame", len(payloads))
	}
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "app")
			writeFile(t, dest, base, 0o755)
			in := &countingReader{r: bytes.NewReader(payload)}
			tail := &tripwire{}
			r := runHelper(t, io.MultiReader(in, tail), "put", dest)
			if tail.touched {
				t.Fatalf("read past the announced body (exit %d, %s)", r.code, r.stderr)
			}
			if in.n != len(payload) {
				t.Fatalf("read %d of the %d payload bytes (exit %d, %s)", in.n, len(payload), r.code, r.stderr)
			}
			r.status(t) // one status line, success or not
		})
	}
}

func readHeaderOK(line []byte, h *putHeader) bool {
	var err error
	*h, err = readPutHeader(bufio.NewReader(bytes.NewReader(line)), 1<<30)
	return err == nil
}

// Kubernetes exec v4 cannot close stdin: the helper must answer while stdin
// stays open after the payload.
func TestPutAnswersWhileStdinStaysOpen(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app")
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(fullPayload([]byte("hello")))
	done := make(chan result, 1)
	go func() { done <- runHelper(t, pr, "put", dest) }()
	select {
	case r := <-done:
		r.ok(t)
	case <-time.After(20 * time.Second):
		t.Fatal("put waited for stdin to close")
	}
	if got := readFile(t, dest); string(got) != "hello" {
		t.Fatalf("content %q", got)
	}
}

func TestPutWaitExecReportsTheWaitWithoutAProcess(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app")
	s := runHelper(t, bytes.NewReader(fullPayload([]byte("x"))), "put", dest, "-wait-exec", "30ms").ok(t)
	if ms, ok := s["restart_ms"].(float64); !ok || ms < 30 {
		t.Fatalf("restart_ms %v, want >= 30", s["restart_ms"])
	}
	if _, ok := s["pid"]; ok {
		t.Fatalf("a pid without a process running dest: %v", s)
	}
}

func TestPutUsageErrors(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app")
	for _, args := range [][]string{
		{"put"},
		{"put", dest, "other"},
		{"put", ""},
		{"put", dest, "-mode", "999"},
		{"put", dest, "-mode", "17777"},
		{"put", dest, "-max-size", "-1"},
		{"put", dest, "-wait-exec", "soon"},
		{"put", dest, "-exclude", "x"},
		{"put", dest, "-mode"},
	} {
		runHelper(t, bytes.NewReader(fullPayload([]byte("x"))), args...).failed(t, "put", exitUsage, "usage")
	}
	for _, bad := range []string{".", "/"} {
		runHelper(t, bytes.NewReader(fullPayload([]byte("x"))), "put", bad).failed(t, "put", exitUsage, "usage")
	}
}
