package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type listing struct {
	Root    string         `json:"root"`
	Entries []listEntry    `json:"entries"`
	Skipped []skippedEntry `json:"skipped"`
}

func list(t *testing.T, args ...string) listing {
	t.Helper()
	r := runHelper(t, nil, append([]string{"list"}, args...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var l listing
	if err := json.Unmarshal(r.stdout, &l); err != nil {
		t.Fatalf("%q: %v", r.stdout, err)
	}
	return l
}

func TestListDescribesTheTreeWithoutFollowingSymlinks(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	writeFile(t, filepath.Join(root, "b.txt"), []byte("bee"), 0o640)
	writeFile(t, filepath.Join(root, "d", "c"), []byte("sea"), 0o755)
	writeFile(t, filepath.Join(root, "d", "x.tmp"), []byte("t"), 0o644)
	writeFile(t, filepath.Join(root, "cache", "big"), []byte("skip me"), 0o644)
	writeFile(t, filepath.Join(dir, "outside", "secret"), []byte("s"), 0o644)
	if err := os.Symlink("../outside", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "d"), goMode(0o2750)); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 123456789)
	if err := os.Chtimes(filepath.Join(root, "b.txt"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	// The root itself may be reached through a symlink.
	if err := os.Symlink("root", filepath.Join(dir, "via")); err != nil {
		t.Fatal(err)
	}

	l := list(t, filepath.Join(dir, "via"), "-exclude", "*.tmp", "-exclude", "cache")
	if l.Root != filepath.Join(dir, "via") || len(l.Skipped) != 0 {
		t.Fatalf("root %q, skipped %v", l.Root, l.Skipped)
	}
	want := []listEntry{
		{Path: "b.txt", Type: "file", Size: 3, Mode: 0o640, Mtime: mtime.UnixNano(), SHA256: sha([]byte("bee"))},
		{Path: "d", Type: "dir", Mode: 0o2750},
		{Path: "d/c", Type: "file", Size: 3, Mode: 0o755, SHA256: sha([]byte("sea"))},
		{Path: "link", Type: "symlink", Mode: 0o777, Target: "../outside"},
	}
	if len(l.Entries) != len(want) {
		t.Fatalf("entries %+v", l.Entries)
	}
	for i, w := range want {
		g := l.Entries[i]
		if w.Mtime == 0 {
			w.Mtime = g.Mtime
		}
		if w.Type == "symlink" {
			w.Size = g.Size
		}
		if g != w {
			t.Errorf("entry %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestListExcludesByBaseNameOrByPath(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a", "x"), nil, 0o644)
	writeFile(t, filepath.Join(root, "b", "x"), nil, 0o644)
	writeFile(t, filepath.Join(root, "b", "y"), nil, 0o644)
	paths := func(l listing) (p []string) {
		for _, e := range l.Entries {
			p = append(p, e.Path)
		}
		return p
	}
	if got := paths(list(t, root, "-exclude", "x")); len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "b/y" {
		t.Fatalf("base-name exclude: %v", got)
	}
	if got := paths(list(t, root, "-exclude", "b/x")); len(got) != 4 || got[3] != "b/y" {
		t.Fatalf("path exclude: %v", got)
	}
}

func TestListSkipsNamesThatAreNotUTF8(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "bad\xff"), nil, 0o644); err != nil {
		t.Skipf("this filesystem refuses non-UTF-8 names: %v", err)
	}
	l := list(t, root)
	if len(l.Entries) != 0 || len(l.Skipped) != 1 || l.Skipped[0].Path != `"bad\xff"` {
		t.Fatalf("%+v", l)
	}
}

func TestListErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), nil, 0o644)
	runHelper(t, nil, "list", filepath.Join(dir, "f")).failed(t, "list", exitUsage, "usage")
	runHelper(t, nil, "list", filepath.Join(dir, "missing")).failed(t, "list", exitFail, "io")
	runHelper(t, nil, "list", dir, "-exclude", "[").failed(t, "list", exitUsage, "usage")
}
