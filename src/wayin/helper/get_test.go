package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// getRecord is one record of get's stream.
type getRecord struct {
	Path  string `json:"path"`
	Size  *int64 `json:"size"`
	Mode  uint32 `json:"mode"`
	Error string `json:"error"`
	Data  []byte `json:"-"`
	SHA   string `json:"-"`
}

type getEnd struct {
	End    bool `json:"end"`
	Files  int  `json:"files"`
	Errors int  `json:"errors"`
}

// readGetStream parses get's gzip stream.
func readGetStream(t *testing.T, stream []byte) ([]getRecord, getEnd) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(zr)
	line := func() []byte {
		l, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("stream cut short: %v", err)
		}
		return l
	}
	var recs []getRecord
	for {
		l := line()
		var end getEnd
		if json.Unmarshal(l, &end) == nil && end.End {
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("data after the end line: %q", rest)
			}
			return recs, end
		}
		var r getRecord
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("record %q: %v", l, err)
		}
		if r.Size != nil {
			r.Data = make([]byte, *r.Size)
			if _, err := io.ReadFull(br, r.Data); err != nil {
				t.Fatal(err)
			}
			var trailer struct {
				SHA256 string `json:"sha256"`
				Error  string `json:"error"`
			}
			if err := json.Unmarshal(line(), &trailer); err != nil {
				t.Fatal(err)
			}
			r.SHA, r.Error = trailer.SHA256, trailer.Error
		}
		recs = append(recs, r)
	}
}

func getTree(t *testing.T) (dir, root string) {
	dir = t.TempDir()
	root = filepath.Join(dir, "root")
	writeFile(t, filepath.Join(root, "a.txt"), []byte("alpha"), 0o600)
	writeFile(t, filepath.Join(root, "sub", "b.bin"), noise(200000, 13), 0o755)
	writeFile(t, filepath.Join(dir, "secret"), []byte("outside"), 0o644)
	for link, target := range map[string]string{
		"inside":          "sub/b.bin",
		"escape":          "../secret",
		"sub/up":          "../a.txt",
		"absolute-escape": filepath.Join(dir, "secret"),
		"dirlink":         "..",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, root
}

func TestGetStreamsRequestedFilesUpToTheEmptyLine(t *testing.T) {
	_, root := getTree(t)
	tail := &tripwire{}
	stdin := io.MultiReader(strings.NewReader("a.txt\nsub/b.bin\ninside\nsub/up\n\n"), tail)
	r := runHelper(t, stdin, "get", root)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if tail.touched {
		t.Fatal("read past the empty line")
	}
	recs, end := readGetStream(t, r.stdout)
	if end.Files != 4 || end.Errors != 0 || len(recs) != 4 {
		t.Fatalf("end %+v, records %+v", end, recs)
	}
	want := map[string][]byte{"a.txt": []byte("alpha"), "sub/b.bin": noise(200000, 13), "inside": noise(200000, 13), "sub/up": []byte("alpha")}
	for i, p := range []string{"a.txt", "sub/b.bin", "inside", "sub/up"} {
		rec := recs[i]
		if rec.Path != p || rec.Error != "" || !bytes.Equal(rec.Data, want[p]) || rec.SHA != sha(want[p]) {
			t.Errorf("record %d: path %q error %q sha %s, want %s", i, rec.Path, rec.Error, rec.SHA, p)
		}
	}
	if recs[0].Mode != 0o600 || recs[1].Mode != 0o755 {
		t.Errorf("modes %o %o", recs[0].Mode, recs[1].Mode)
	}
}

func TestGetRequestMayEndAtEOF(t *testing.T) {
	_, root := getTree(t)
	r := runHelper(t, strings.NewReader("a.txt"), "get", root)
	recs, end := readGetStream(t, r.stdout)
	if r.code != 0 || end.Files != 1 || len(recs) != 1 || string(recs[0].Data) != "alpha" {
		t.Fatalf("exit %d, end %+v, records %+v", r.code, end, recs)
	}
	// Nothing requested: just the end line.
	r = runHelper(t, strings.NewReader("\n"), "get", root)
	if recs, end := readGetStream(t, r.stdout); len(recs) != 0 || end.Files != 0 || end.Errors != 0 {
		t.Fatalf("end %+v, records %+v", end, recs)
	}
}

func TestGetRefusesPathsOutsideTheDirectory(t *testing.T) {
	_, root := getTree(t)
	refused := []string{
		"/etc/passwd",
		"../secret",
		"sub/../a.txt", // not clean
		"./a.txt",      // not clean
		"sub//b.bin",   // not clean
		"a.txt/",       // not clean
		"..",
		".",
		"a\\b",
		"a\x00b",
		"escape",          // symlink out
		"absolute-escape", // absolute symlink out
		"dirlink/secret",  // through a symlinked directory
		"sub",             // a directory
		"missing",         // nothing there
		strings.Repeat("x", 5000),
		"bad\xffutf8",
	}
	stdin := strings.Join(refused, "\n") + "\n\n"
	r := runHelper(t, strings.NewReader(stdin), "get", root)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	recs, end := readGetStream(t, r.stdout)
	if end.Files != 0 || end.Errors != len(refused) || len(recs) != len(refused) {
		t.Fatalf("end %+v, %d records for %d requests", end, len(recs), len(refused))
	}
	for i, rec := range recs {
		// JSON cannot carry the invalid UTF-8 name as it is.
		samePath := rec.Path == refused[i] || !utf8.ValidString(refused[i])
		if rec.Size != nil || rec.Error == "" || !samePath {
			t.Errorf("request %q: record %+v", refused[i], rec)
		}
	}
}

func TestGetErrors(t *testing.T) {
	dir := t.TempDir()
	r := runHelper(t, strings.NewReader("\n"), "get", filepath.Join(dir, "missing"))
	r.failed(t, "get", exitFail, "io")
	if len(r.stdout) != 0 {
		t.Fatalf("get wrote a stream: %q", r.stdout)
	}
	runHelper(t, nil, "get").failed(t, "get", exitUsage, "usage")
	long := strings.Repeat("x", ioChunk+1) + "\n\n"
	runHelper(t, strings.NewReader(long), "get", dir).failed(t, "get", exitUsage, "usage")
}

func TestCheckRelPathAndWithin(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "a.b/c..d", "...", "a/.hidden"} {
		if err := checkRelPath(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, c := range []struct {
		root, p string
		in      bool
	}{
		{"/r", "/r", true}, {"/r", "/r/x", true}, {"/r", "/rx", false}, {"/r", "/", false}, {"/", "/x", true},
	} {
		if within(c.root, c.p) != c.in {
			t.Errorf("within(%q, %q) != %v", c.root, c.p, c.in)
		}
	}
}
