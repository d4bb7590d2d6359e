// get: files out of the container, in one gzip stream, for syncback.

package main

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

const (
	maxGetRequests  = 1 << 20
	maxGetPathBytes = 4096
)

// checkRelPath refuses anything that is not a plain relative path in clean form.
func checkRelPath(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("empty path")
	case len(p) > maxGetPathBytes:
		return errors.New("path too long")
	case !utf8.ValidString(p):
		return errors.New("path is not valid UTF-8")
	case strings.ContainsAny(p, "\x00\\"):
		return errors.New("path contains NUL or a backslash")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute path")
	case path.Clean(p) != p:
		return errors.New("path is not in clean form")
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return errors.New("path contains ..")
		}
	}
	return nil
}

// within reports whether p is root or below it (both absolute and clean).
func within(root, p string) bool {
	if p == root {
		return true
	}
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, root+"/")
}

func readGetRequests(stdin io.Reader) ([]string, error) {
	br := bufio.NewReaderSize(stdin, ioChunk)
	var reqs []string
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, fail("usage", "request line longer than %d bytes", ioChunk)
		}
		s := strings.TrimSuffix(string(line), "\n")
		if s == "" && err == nil {
			// An empty line ends the request: the Kubernetes exec protocol
			// v4 cannot close stdin, so the request must frame itself.
			return reqs, nil
		}
		if s != "" {
			if len(reqs) >= maxGetRequests {
				return nil, fail("usage", "more than %d paths requested", maxGetRequests)
			}
			reqs = append(reqs, s)
		}
		if err == io.EOF {
			return reqs, nil
		}
		if err != nil {
			return nil, ioFail(err)
		}
	}
}

func cmdGet(argv []string, stdin io.Reader, stdout io.Writer) error {
	a, err := parseArgs(argv)
	if err != nil {
		return err
	}
	if err := wantOperands(a, 1, "get DIR < paths"); err != nil {
		return err
	}
	root, err := filepath.EvalSymlinks(a.pos[0])
	if err != nil {
		return ioFail(err)
	}
	if root, err = filepath.Abs(root); err != nil {
		return ioFail(err)
	}
	reqs, err := readGetRequests(stdin)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(stdout, ioChunk)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return ioFail(err)
	}
	files, errs := 0, 0
	for _, rel := range reqs {
		sent, err := sendFile(zw, root, rel)
		if err != nil {
			return err // the stream has no end line: the reader sees it was cut
		}
		if sent {
			files++
		} else {
			errs++
		}
	}
	if err := writeJSON(zw, map[string]interface{}{"end": true, "files": files, "errors": errs}); err != nil {
		return ioFail(err)
	}
	if err := zw.Close(); err != nil {
		return ioFail(err)
	}
	return bw.Flush()
}

// sendFile writes one file record. It returns false (and writes an error
// record) for a refused or unreadable path; an error means the stream broke.
func sendFile(w io.Writer, root, rel string) (bool, error) {
	refuse := func(why string) (bool, error) {
		return false, writeJSON(w, map[string]interface{}{"path": rel, "error": why})
	}
	if err := checkRelPath(rel); err != nil {
		return refuse(err.Error())
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return refuse(err.Error())
	}
	if !within(root, resolved) {
		return refuse("resolves outside the directory through a symlink")
	}
	f, st, err := openRegular(resolved)
	if err != nil {
		return refuse(err.Error())
	}
	defer f.Close()
	size := st.Size()
	hdr := map[string]interface{}{"path": rel, "size": size, "mode": unixMode(st.Mode()), "mtime": st.ModTime().UnixNano()}
	if err := writeJSON(w, hdr); err != nil {
		return false, ioFail(err)
	}
	h := sha256.New()
	out := &watchedWriter{w: w}
	n, err := io.CopyN(io.MultiWriter(out, h), f, size)
	if out.err != nil {
		return false, ioFail(out.err)
	}
	var problem string
	if err != nil && err != io.EOF {
		problem = "read failed: " + err.Error()
	}
	if n < size {
		// Keep the framing: pad to the announced size, then say it is void.
		if _, err := io.CopyN(w, zeroReader{}, size-n); err != nil {
			return false, ioFail(err)
		}
		if problem == "" {
			problem = "changed while it was read"
		}
	}
	if problem == "" {
		if after, err := f.Stat(); err != nil || after.Size() != size || !after.ModTime().Equal(st.ModTime()) {
			problem = "changed while it was read"
		}
	}
	if problem != "" {
		return false, writeJSON(w, map[string]interface{}{"error": problem})
	}
	return true, writeJSON(w, map[string]interface{}{"sha256": hex.EncodeToString(h.Sum(nil))})
}

// watchedWriter remembers a write error, so that a broken output stream is
// told apart from a file that could not be read.
type watchedWriter struct {
	w   io.Writer
	err error
}

func (o *watchedWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}
