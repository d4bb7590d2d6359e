package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSeedAFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "vol", "app")
	content := noise(50000, 12)
	writeFile(t, src, content, 0o750)

	s := runHelper(t, nil, "seed", src, dst).ok(t)
	if s["files"] != float64(1) || s["bytes"] != float64(len(content)) || s["sha256"] != sha(content) {
		t.Fatalf("status %v", s)
	}
	if !bytes.Equal(readFile(t, dst), content) || modeOf(t, dst).Perm() != 0o750 {
		t.Fatal("copy differs")
	}
	// -mode overrides the source's mode.
	runHelper(t, nil, "seed", "-mode", "0700", src, dst).ok(t)
	if modeOf(t, dst).Perm() != 0o700 {
		t.Fatalf("mode %v", modeOf(t, dst))
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("temporary files left: %v", l)
	}
}

func TestSeedATree(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, filepath.Join(src, "a"), []byte("aaa"), 0o644)
	writeFile(t, filepath.Join(src, "d", "b"), []byte("bb"), 0o755)
	if err := os.Symlink("../a", filepath.Join(src, "d", "link")); err != nil {
		t.Fatal(err)
	}
	// An old file at a link's place is replaced, other files are kept.
	writeFile(t, filepath.Join(dst, "d", "link"), []byte("old"), 0o644)
	writeFile(t, filepath.Join(dst, "keep"), []byte("k"), 0o644)

	s := runHelper(t, nil, "seed", src, dst).ok(t)
	if s["files"] != float64(2) || s["bytes"] != float64(5) {
		t.Fatalf("status %v", s)
	}
	if string(readFile(t, filepath.Join(dst, "a"))) != "aaa" || string(readFile(t, filepath.Join(dst, "d", "b"))) != "bb" {
		t.Fatal("contents differ")
	}
	if modeOf(t, filepath.Join(dst, "d", "b")).Perm() != 0o755 {
		t.Fatal("mode not kept")
	}
	if target, err := os.Readlink(filepath.Join(dst, "d", "link")); err != nil || target != "../a" {
		t.Fatalf("link: %q, %v", target, err)
	}
	if string(readFile(t, filepath.Join(dst, "keep"))) != "k" {
		t.Fatal("an unrelated file changed")
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("temporary files left: %v", l)
	}
	// -mode is for a single file.
	runHelper(t, nil, "seed", "-mode", "0700", src, dst).failed(t, "seed", exitUsage, "usage")
}

func TestSeedErrors(t *testing.T) {
	dir := t.TempDir()
	runHelper(t, nil, "seed", filepath.Join(dir, "missing"), filepath.Join(dir, "x")).failed(t, "seed", exitFail, "io")
	runHelper(t, nil, "seed", filepath.Join(dir, "only-one")).failed(t, "seed", exitUsage, "usage")
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Fatalf("created: %v", err)
	}
}
