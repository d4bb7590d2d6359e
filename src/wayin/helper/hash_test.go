package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHash(t *testing.T) {
	dir := t.TempDir()
	content := noise(100000, 11)
	writeFile(t, filepath.Join(dir, "f"), content, 0o644)

	s := runHelper(t, nil, "hash", filepath.Join(dir, "f")).answered(t)
	if s["sha256"] != sha(content) || s["size"] != float64(len(content)) || len(s) != 2 {
		t.Fatalf("status %v", s)
	}
	s = runHelper(t, nil, "hash", filepath.Join(dir, "missing")).answered(t)
	if s["missing"] != true || len(s) != 1 {
		t.Fatalf("status %v", s)
	}
	runHelper(t, nil, "hash", dir).failed(t, "hash", exitUsage, "usage")
	runHelper(t, nil, "hash").failed(t, "hash", exitUsage, "usage")
}

func TestHashRegularRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), []byte("x"), 0o644)
	if err := os.Symlink("f", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if sum, _, err := hashRegular(filepath.Join(dir, "f")); err != nil || sum != sha([]byte("x")) {
		t.Fatalf("%q, %v", sum, err)
	}
	for _, p := range []string{"link", "."} {
		if _, _, err := hashRegular(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s hashed", p)
		}
	}
}
