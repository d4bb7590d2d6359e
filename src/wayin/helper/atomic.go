// The atomic writer: every file the helper writes goes through it, so that
// a reader (watchexec, the app) never sees a half-written file.

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// atomicFile is a temporary file in the destination's directory that becomes
// the destination only through commit (chmod, rename; fsync first and of the
// directory after when durable).
//
// Atomic is what every reader needs: a rename within one kernel is seen
// whole, so watchexec and the app never see a partial file, fsync or not.
// Durable (surviving a crash of the machine) costs 10–50 ms per file on
// overlay filesystems, and a put does without it: a binary or file synced
// into a running container lives as long as the container's filesystem,
// which a crash discards anyway (the container restarts from its image and
// gohot sends the current binary again). seed, which fills volumes that
// outlive a container's restarts, stays durable.
type atomicFile struct {
	dest    string
	f       *os.File
	buf     *bufio.Writer
	sum     hash.Hash
	n       int64
	done    bool
	durable bool
}

// newAtomicFile starts a temporary file for dest; sum (nil: none) hashes
// what is written.
func newAtomicFile(dest string, durable bool, sum hash.Hash) (*atomicFile, error) {
	dir, name := filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	if name == "" || name == "." || name == ".." {
		return nil, fail("usage", "bad destination %q", dest)
	}
	// Sync rules may target directories the image does not have yet.
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, ioFail(err)
		}
	}
	f, err := os.CreateTemp(dir, "."+name+".gohot-*")
	if err != nil {
		return nil, ioFail(err)
	}
	a := &atomicFile{dest: dest, f: f, sum: sum, durable: durable}
	a.buf = bufio.NewWriterSize(f, 1<<20)
	return a, nil
}

func (a *atomicFile) Write(p []byte) (int, error) {
	if a.sum != nil {
		a.sum.Write(p)
	}
	n, err := a.buf.Write(p)
	a.n += int64(n)
	return n, err
}

func (a *atomicFile) hexSum() string { return hex.EncodeToString(a.sum.Sum(nil)) }

func (a *atomicFile) commit(mode uint32) error {
	if err := a.prepare(mode); err != nil {
		return err
	}
	return a.publish()
}

// prepare completes the temporary file (flush, chmod, fsync when durable,
// close) without publishing it: the tar personality prepares every member
// of an archive before it publishes any.
func (a *atomicFile) prepare(mode uint32) error {
	if err := a.buf.Flush(); err != nil {
		return ioFail(err)
	}
	// A staged tar member waits for the whole archive: its buffer must not.
	a.buf = nil
	if err := a.f.Chmod(goMode(mode)); err != nil {
		return ioFail(err)
	}
	if a.durable {
		if err := a.f.Sync(); err != nil {
			return ioFail(err)
		}
	}
	if err := a.f.Close(); err != nil {
		return ioFail(err)
	}
	return nil
}

// publish renames the prepared temporary file over the destination (and
// fsyncs the directory when durable).
func (a *atomicFile) publish() error {
	if err := os.Rename(a.f.Name(), a.dest); err != nil {
		return ioFail(err)
	}
	a.done = true
	if !a.durable {
		return nil
	}
	return syncDir(filepath.Dir(a.dest))
}

// abort removes the temporary file unless commit succeeded. Safe to defer.
func (a *atomicFile) abort() {
	if a.done {
		return
	}
	a.f.Close()
	os.Remove(a.f.Name())
}

// syncDir fsyncs a directory, so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return ioFail(err)
	}
	defer d.Close()
	// Some filesystems cannot fsync a directory; the rename has happened
	// and is as durable as they allow.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return ioFail(err)
	}
	return nil
}

// copyAtomic copies src to dst through an atomicFile; it returns the bytes
// copied and their sha256.
func copyAtomic(src, dst string, mode uint32) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", ioFail(err)
	}
	defer in.Close()
	out, err := newAtomicFile(dst, true, sha256.New())
	if err != nil {
		return 0, "", err
	}
	defer out.abort()
	if _, err := io.Copy(out, in); err != nil {
		return 0, "", ioFail(err)
	}
	if err := out.commit(mode); err != nil {
		return 0, "", err
	}
	return out.n, out.hexSum(), nil
}
