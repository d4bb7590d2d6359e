// hash, and the file hashing that list shares.

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

func cmdHash(argv []string, stdout io.Writer) error {
	a, err := parseArgs(argv)
	if err != nil {
		return err
	}
	if err := wantOperands(a, 1, "hash PATH"); err != nil {
		return err
	}
	f, err := os.Open(a.pos[0])
	if errors.Is(err, fs.ErrNotExist) {
		return writeJSON(stdout, map[string]interface{}{"missing": true})
	}
	if err != nil {
		return ioFail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ioFail(err)
	}
	if !st.Mode().IsRegular() {
		return fail("usage", "%s is not a regular file", a.pos[0])
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return ioFail(err)
	}
	return writeJSON(stdout, map[string]interface{}{"sha256": hex.EncodeToString(h.Sum(nil)), "size": n})
}

// openRegular opens a regular file without following a symlink and without
// blocking on a FIFO that replaced it in the meantime.
func openRegular(p string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, errors.New("not a regular file")
	}
	return f, st, nil
}

func hashRegular(p string) (string, fs.FileInfo, error) {
	f, st, err := openRegular(p)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", nil, err
	}
	after, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	if n != st.Size() || after.Size() != st.Size() || !after.ModTime().Equal(st.ModTime()) {
		return "", st, errors.New("changed while it was hashed")
	}
	return hex.EncodeToString(h.Sum(nil)), st, nil
}
