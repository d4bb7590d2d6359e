package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRm(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "sub", "f")
	writeFile(t, f, []byte("x"), 0o644)

	s := runHelper(t, nil, "rm", f).ok(t)
	if s["ok"] != true || s["removed"] != true {
		t.Fatalf("status %v", s)
	}
	if _, err := os.Lstat(f); !os.IsNotExist(err) {
		t.Fatalf("still there: %v", err)
	}
	// Already gone: fine, and says so.
	if s := runHelper(t, nil, "rm", f).ok(t); s["removed"] != false {
		t.Fatalf("status %v", s)
	}
	// A directory is refused and kept.
	runHelper(t, nil, "rm", filepath.Join(dir, "sub")).failed(t, "rm", exitUsage, "usage")
	if _, err := os.Stat(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	runHelper(t, nil, "rm").failed(t, "rm", exitUsage, "usage")
}

func TestRmRemovesASymlinkNotItsTarget(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "target"), []byte("x"), 0o644)
	if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	runHelper(t, nil, "rm", filepath.Join(dir, "link")).ok(t)
	if _, err := os.Stat(filepath.Join(dir, "target")); err != nil {
		t.Fatal(err)
	}
}
