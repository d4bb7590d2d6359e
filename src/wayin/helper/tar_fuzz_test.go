package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzTarExtract feeds arbitrary bytes to the tar personality. Whatever
// they are, nothing may be written outside the extraction directory, no
// temporary file may stay behind, and a refused archive leaves the
// directory as it was.
func FuzzTarExtract(f *testing.F) {
	seed := func(ms ...member) []byte { return archive(f, ms...) }
	f.Add(seed(member{name: "/ko-app/hello", body: "bin"}))
	f.Add(seed(member{name: "d", typ: tar.TypeDir}, member{name: "d/f", body: "x"}, member{name: "d/l", typ: tar.TypeSymlink, link: "f"}))
	f.Add(seed(member{name: "l", typ: tar.TypeSymlink, link: ".."}, member{name: "l/x", body: "x"}))
	f.Add(seed(member{name: "../x", body: "x"}))
	f.Add([]byte("not a tar archive"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "sub", "keep"), []byte("k"), 0o644)
		before := tree(t, root)
		var stdout, stderr bytes.Buffer
		code := runTar([]string{"-x", "-f", "-", "-C", root}, bytes.NewReader(stream), &stdout, &stderr)
		entries, err := os.ReadDir(base)
		if err != nil || len(entries) != 1 {
			t.Fatalf("something was written beside the root: %v", entries)
		}
		if l := leftovers(t, root); len(l) != 0 {
			t.Fatalf("temporary files left: %v", l)
		}
		if code != 0 {
			if after := tree(t, root); !reflect.DeepEqual(after, before) {
				t.Fatalf("refused (%s) but changed the tree: %v", stderr.String(), after)
			}
		}
	})
}
