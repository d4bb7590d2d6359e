// list: a recursive description of a directory, for syncback.

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

type listEntry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode"`
	Mtime  int64  `json:"mtime"`
	SHA256 string `json:"sha256,omitempty"`
	Target string `json:"target,omitempty"`
	Error  string `json:"error,omitempty"`
}

type skippedEntry struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func excluded(patterns []string, rel string) bool {
	base := path.Base(rel)
	for _, p := range patterns {
		subject := base
		if strings.Contains(p, "/") {
			subject = rel
		}
		if ok, _ := path.Match(p, subject); ok {
			return true
		}
	}
	return false
}

func cmdList(argv []string, stdout io.Writer) error {
	a, err := parseArgs(argv, "exclude")
	if err != nil {
		return err
	}
	if err := wantOperands(a, 1, "list DIR [-exclude PATTERN]..."); err != nil {
		return err
	}
	root, err := filepath.EvalSymlinks(a.pos[0])
	if err != nil {
		return ioFail(err)
	}
	if st, err := os.Stat(root); err != nil {
		return ioFail(err)
	} else if !st.IsDir() {
		return fail("usage", "%s is not a directory", a.pos[0])
	}
	entries := []listEntry{}
	skipped := []skippedEntry{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, werr error) error {
		if p == root {
			return werr
		}
		relOS, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(relOS)
		if werr != nil {
			if errors.Is(werr, fs.ErrNotExist) {
				return nil // vanished while we walked
			}
			// A directory that could not be read is reported a second
			// time by WalkDir: mark its entry instead of failing.
			for i := len(entries) - 1; i >= 0; i-- {
				if entries[i].Path == rel && entries[i].Type == "dir" {
					entries[i].Error = werr.Error()
					return nil
				}
			}
			return werr
		}
		if excluded(a.excludes, rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !utf8.ValidString(rel) {
			skipped = append(skipped, skippedEntry{Path: strconv.Quote(rel), Reason: "name is not valid UTF-8"})
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		e := listEntry{Path: rel, Size: info.Size(), Mode: unixMode(info.Mode()), Mtime: info.ModTime().UnixNano()}
		switch {
		case info.Mode().IsRegular():
			e.Type = "file"
			sum, st, herr := hashRegular(p)
			if errors.Is(herr, fs.ErrNotExist) {
				return nil
			}
			if herr != nil {
				e.Error = herr.Error()
			} else {
				e.SHA256 = sum
				e.Size, e.Mtime = st.Size(), st.ModTime().UnixNano()
			}
		case info.IsDir():
			e.Type, e.Size = "dir", 0
		case info.Mode()&fs.ModeSymlink != 0:
			e.Type = "symlink"
			t, err := os.Readlink(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				e.Error = err.Error()
			} else if !utf8.ValidString(t) {
				e.Error = "link target is not valid UTF-8"
			} else {
				e.Target = t
			}
		default:
			e.Type, e.Size = "other", 0
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return ioFail(err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	bw := bufio.NewWriterSize(stdout, ioChunk)
	if err := json.NewEncoder(bw).Encode(map[string]interface{}{"root": a.pos[0], "entries": entries, "skipped": skipped}); err != nil {
		return ioFail(err)
	}
	return bw.Flush()
}
