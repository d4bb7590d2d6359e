package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// request frames one serve request: the args line, then the payload.
func request(payload []byte, args ...string) []byte {
	line, err := json.Marshal(map[string]interface{}{"args": args, "payload": len(payload)})
	if err != nil {
		panic(err)
	}
	return append(append(line, '\n'), payload...)
}

// answers splits a session's stdout into its status lines.
func answers(t *testing.T, out []byte) []map[string]interface{} {
	t.Helper()
	var got []map[string]interface{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]interface{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("answer %q is not JSON: %v", sc.Bytes(), err)
		}
		got = append(got, m)
	}
	return got
}

func TestServeAnswersEachRequestWithOneLineAndEndsCleanlyAtEOF(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app")
	one, two := noise(100<<10, 5), noise(120<<10, 6)
	var in bytes.Buffer
	in.Write(request(nil, "version"))
	in.Write(request(fullPayload(one), "put", "-mode", "0755", "--", dest))
	in.Write(request(nil, "hash", "--", dest))
	// A failing put (bad checksum) answers and leaves the stream in step:
	// its unread payload is skipped.
	bad := fullPayload(two)
	bad[len(bad)-5] ^= 0xff
	in.Write(request(bad, "put", "--", dest))
	in.Write(request(fullPayload(two), "put", "--", dest))
	in.Write(request(nil, "rm", "--", filepath.Join(dir, "nothing")))
	r := runHelper(t, &in, "serve")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	got := answers(t, r.stdout)
	if len(got) != 6 {
		t.Fatalf("want 6 answers, got %d: %s", len(got), r.stdout)
	}
	if got[0]["protocol"] != float64(protocol) {
		t.Errorf("version: %v", got[0])
	}
	if got[1]["ok"] != true || got[1]["sha256"] != sha(one) {
		t.Errorf("put: %v", got[1])
	}
	if got[2]["sha256"] != sha(one) || got[2]["size"] != float64(len(one)) {
		t.Errorf("hash: %v", got[2])
	}
	if got[3]["ok"] != false || got[3]["error"] != "bad-payload" && got[3]["error"] != "hash-mismatch" {
		t.Errorf("corrupt put: %v", got[3])
	}
	if got[4]["ok"] != true || !bytes.Equal(readFile(t, dest), two) {
		t.Errorf("put after a failed one: %v", got[4])
	}
	if got[5]["ok"] != true || got[5]["removed"] != false {
		t.Errorf("rm: %v", got[5])
	}
}

func TestServeDeltaAgainstWhatTheSessionWroteBefore(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app")
	base := noise(64<<10, 7)
	next := append(append([]byte(nil), base[:1000]...), []byte("inserted")...)
	next = append(next, base[1000:]...)
	ops := append(record(0, make([]byte, 1000), []byte("inserted")), record(0, make([]byte, len(base)-1000), nil)...)
	var in bytes.Buffer
	in.Write(request(fullPayload(base), "put", "--", dest))
	in.Write(request(deltaPayload(base, next, ops), "put", "--", dest))
	// The same delta again: its base is gone now.
	in.Write(request(deltaPayload(base, next, ops), "put", "--", dest))
	got := answers(t, runHelper(t, &in, "serve").stdout)
	if len(got) != 3 || got[1]["kind"] != "delta" || got[2]["error"] != "base-mismatch" {
		t.Fatalf("answers %v", got)
	}
	if !bytes.Equal(readFile(t, dest), next) {
		t.Fatal("content differs")
	}
}

func TestServeRefusesStreamingSubcommandsAndStaysInStep(t *testing.T) {
	dir := t.TempDir()
	var in bytes.Buffer
	in.Write(request([]byte("a\n\n"), "get", dir))
	in.Write(request(nil, "list", dir))
	in.Write(request(nil, "frobnicate"))
	in.Write(request(nil, "version"))
	r := runHelper(t, &in, "serve")
	got := answers(t, r.stdout)
	if r.code != 0 || len(got) != 4 {
		t.Fatalf("exit %d, answers %s", r.code, r.stdout)
	}
	for i := 0; i < 3; i++ {
		if got[i]["ok"] != false || got[i]["error"] != "usage" {
			t.Errorf("request %d: %v", i, got[i])
		}
	}
	if got[3]["name"] != "gohot-helper" {
		t.Errorf("version after refusals: %v", got[3])
	}
}

func TestServeEndsOnARequestLineItCannotRead(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":        "put /ko-app/x\n",
		"no payload size": `{"args":["version"]}` + "\n",
		"no args":         `{"args":[],"payload":0}` + "\n",
		"too long":        `{"args":["` + strings.Repeat("x", maxRequestLine) + `"],"payload":0}` + "\n",
		"cut short":       `{"args":["version"],"pay`,
	} {
		r := runHelper(t, strings.NewReader(in+string(request(nil, "version"))), "serve")
		got := answers(t, r.stdout)
		if r.code != exitUsage || len(got) != 1 || got[0]["error"] != "usage" {
			t.Errorf("%s: exit %d, answers %s", name, r.code, r.stdout)
		}
	}
}

func TestServeTruncatedPayloadFailsThatRequestOnly(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app")
	p := fullPayload(noise(10<<10, 9))
	// The request announces the whole payload but the stream ends early.
	in := io.MultiReader(bytes.NewReader(request(p, "put", "--", dest)[:len(p)/2]))
	r := runHelper(t, in, "serve")
	got := answers(t, r.stdout)
	if len(got) != 1 || got[0]["ok"] != false {
		t.Fatalf("exit %d, answers %s", r.code, r.stdout)
	}
	if l := leftovers(t, filepath.Dir(dest)); len(l) != 0 {
		t.Fatalf("temporary files left: %v", l)
	}
}

func TestServeTrustsItsMemoryOfTheBaseOnlyWhileTheFileIsUnchanged(t *testing.T) {
	dir := t.TempDir()
	base := noise(64<<10, 11)
	next := append(append([]byte(nil), base...), []byte("tail")...)
	ops := record(0, make([]byte, len(base)), []byte("tail"))
	replace := map[string]func(dest string){
		// Another file renamed over it (a new inode).
		"renamed over": func(dest string) {
			writeFile(t, dest+".tmp", noise(64<<10, 12), 0o755)
			if err := os.Rename(dest+".tmp", dest); err != nil {
				t.Fatal(err)
			}
		},
		// Written in place (same inode, another size).
		"written in place": func(dest string) { writeFile(t, dest, noise(1000, 13), 0o755) },
	}
	// runHelper runs in-process: what the first serve remembers, the
	// second sees, as within one session.
	for name, change := range replace {
		dest := filepath.Join(dir, name)
		var in bytes.Buffer
		in.Write(request(fullPayload(base), "put", "--", dest))
		if got := answers(t, runHelper(t, &in, "serve").stdout); len(got) != 1 || got[0]["ok"] != true {
			t.Fatalf("%s: %v", name, got)
		}
		change(dest)
		changed := readFile(t, dest)
		in.Reset()
		in.Write(request(deltaPayload(base, next, ops), "put", "--", dest))
		if got := answers(t, runHelper(t, &in, "serve").stdout); len(got) != 1 || got[0]["error"] != "base-mismatch" {
			t.Fatalf("%s: a delta against a changed file: %v", name, got)
		}
		if !bytes.Equal(readFile(t, dest), changed) {
			t.Fatalf("%s: the changed file was overwritten", name)
		}
	}
}
