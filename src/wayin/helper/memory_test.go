package main

// The helper runs inside the user's container and shares its memory limit:
// whatever a session or an archive carries, what it holds stays small.

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// liveHeap is the heap still in use once the collector has run.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// forgetSession clears what an earlier in-process session remembered.
func forgetSession() {
	lastWritten = map[string]*writtenFile{}
}

// feed streams the serve requests that next produces (nil: the end) into a
// pipe, so that the input itself never sits in memory whole.
func feed(next func(i int) []byte) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for i := 0; ; i++ {
			req := next(i)
			if req == nil {
				pw.Close()
				return
			}
			if _, err := pw.Write(req); err != nil {
				return
			}
		}
	}()
	return pr
}

func TestServeKeepsHashesOfWhatItWroteNotContents(t *testing.T) {
	forgetSession()
	defer forgetSession()
	dir := t.TempDir()
	const files, size = 64, 1 << 20
	before := liveHeap()
	r := runHelper(t, feed(func(i int) []byte {
		if i == files {
			return nil
		}
		return request(fullPayload(noise(size, uint32(i+1))), "put", "-mode", "0644", "--", filepath.Join(dir, fmt.Sprintf("kodata/f%02d", i)))
	}), "serve")
	grown := liveHeap() - before
	got := answers(t, r.stdout)
	if r.code != 0 || len(got) != files {
		t.Fatalf("exit %d, %d answers: %s", r.code, len(got), r.stderr)
	}
	for i, a := range got {
		if a["ok"] != true {
			t.Fatalf("put %d: %v", i, a)
		}
	}
	if grown > 8<<20 {
		t.Fatalf("a session that wrote %d MiB of files holds %d MiB more heap", files*size>>20, grown>>20)
	}
	if len(lastWritten) != files {
		t.Fatalf("%d files described, want %d", len(lastWritten), files)
	}
	for p, w := range lastWritten {
		if w.data != nil {
			t.Fatalf("the content of %s (full puts only) was kept", p)
		}
	}
}

func TestServeKeepsTheContentOfFilesThatTakeDeltasBounded(t *testing.T) {
	forgetSession()
	defer forgetSession()
	dir := t.TempDir()
	base := noise(256<<10, 21)
	next := append(append([]byte(nil), base...), []byte("tail")...)
	ops := record(0, make([]byte, len(base)), []byte("tail"))
	bin := func(n int) string { return filepath.Join(dir, fmt.Sprintf("ko-app/app%d", n)) }
	var in bytes.Buffer
	for n := 0; n < 3; n++ {
		in.Write(request(fullPayload(base), "put", "--", bin(n)))
		in.Write(request(deltaPayload(base, next, ops), "put", "--", bin(n)))
	}
	// A full put to a binary that took deltas (resent after a base mismatch) keeps it too.
	in.Write(request(fullPayload(base), "put", "--", bin(0)))
	in.Write(request(fullPayload(noise(1000, 22)), "put", "--", filepath.Join(dir, "kodata/x")))
	got := answers(t, runHelper(t, &in, "serve").stdout)
	if len(got) != 8 || got[1]["kind"] != "delta" || got[5]["kind"] != "delta" {
		t.Fatalf("answers %v", got)
	}
	var kept []string
	for p, w := range lastWritten {
		if w.data != nil {
			kept = append(kept, filepath.Base(p))
		}
	}
	if len(kept) != maxKeptContents {
		t.Fatalf("contents kept for %v, want %d of them", kept, maxKeptContents)
	}
	if w := lastWritten[bin(0)]; w == nil || !bytes.Equal(w.data, base) {
		t.Fatal("the binary written last is not kept for its next delta")
	}
	if w := lastWritten[bin(1)]; w == nil || w.data != nil {
		t.Fatal("the least recently written binary's content is still kept")
	}
	// Its next delta still applies (base read from disk, hash remembered).
	in.Reset()
	third := append(append([]byte(nil), next...), []byte("more")...)
	in.Write(request(deltaPayload(next, third, record(0, make([]byte, len(next)), []byte("more"))), "put", "--", bin(1)))
	if got := answers(t, runHelper(t, &in, "serve").stdout); len(got) != 1 || got[0]["kind"] != "delta" {
		t.Fatalf("delta against a forgotten content: %v", got)
	}
}

func TestServeDescribesAtMostMaxRememberedFiles(t *testing.T) {
	forgetSession()
	defer forgetSession()
	dir := t.TempDir()
	small := fullPayload([]byte("x"))
	r := runHelper(t, feed(func(i int) []byte {
		if i == maxRemembered+10 {
			return nil
		}
		return request(small, "put", "--", filepath.Join(dir, fmt.Sprintf("f%05d", i)))
	}), "serve")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if len(lastWritten) != maxRemembered {
		t.Fatalf("%d files described, want at most %d", len(lastWritten), maxRemembered)
	}
	if _, ok := lastWritten[filepath.Join(dir, "f00000")]; ok {
		t.Fatal("the oldest file is still described")
	}
}

func TestTarStagingHoldsNoBufferPerMember(t *testing.T) {
	root := t.TempDir()
	const members, size = 64, 1 << 20
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i := 0; i < members; i++ {
			h := &tar.Header{Name: fmt.Sprintf("kodata/f%02d", i), Mode: 0o644, Size: size, Typeflag: tar.TypeReg}
			if tw.WriteHeader(h) != nil {
				return
			}
			if _, err := tw.Write(noise(size, uint32(i+1))); err != nil {
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	x := &extraction{root: root, o: tarOpts{extract: true, touch: true},
		files: map[string]*staged{}, symlinks: map[string]bool{}, dirModes: map[string]os.FileMode{}}
	before := liveHeap()
	if err := x.stage(pr, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Every member is staged, none published yet: the moment memory peaks.
	grown := liveHeap() - before
	if grown > 8<<20 {
		t.Fatalf("%d staged members of 1 MiB hold %d MiB of heap", members, grown>>20)
	}
	if err := x.commit(); err != nil {
		t.Fatal(err)
	}
	if b := readFile(t, filepath.Join(root, "kodata/f07")); !bytes.Equal(b, noise(size, 8)) {
		t.Fatal("member content differs")
	}
}
