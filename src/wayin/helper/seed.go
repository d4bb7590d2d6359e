// seed: an init container copying files into a volume, atomically.

package main

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func cmdSeed(argv []string, stdout io.Writer) error {
	a, err := parseArgs(argv, "mode")
	if err != nil {
		return err
	}
	if err := wantOperands(a, 2, "seed SRC DST [-mode 0755]"); err != nil {
		return err
	}
	src, dst := filepath.Clean(a.pos[0]), filepath.Clean(a.pos[1])
	st, err := os.Stat(src)
	if err != nil {
		return ioFail(err)
	}
	if st.Mode().IsRegular() {
		mode := unixMode(st.Mode())
		if a.hasMode {
			mode = a.mode
		}
		n, sum, err := copyAtomic(src, dst, mode)
		if err != nil {
			return err
		}
		return writeJSON(stdout, map[string]interface{}{"ok": true, "files": 1, "bytes": n, "sha256": sum})
	}
	if !st.IsDir() {
		return fail("usage", "%s is neither a regular file nor a directory", src)
	}
	if a.hasMode {
		return fail("usage", "-mode applies to a single file, not to a directory")
	}
	var files, total int64
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, goMode(unixMode(info.Mode())|0o700))
		case info.Mode().IsRegular():
			n, _, err := copyAtomic(p, target, unixMode(info.Mode()))
			files++
			total += n
			return err
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tmp := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".gohot-link")
			os.Remove(tmp)
			if err := os.Symlink(link, tmp); err != nil {
				return err
			}
			if err := os.Rename(tmp, target); err != nil {
				os.Remove(tmp)
				return err
			}
			return nil
		default:
			return nil // devices, sockets and FIFOs are not seeded
		}
	})
	if err != nil {
		return ioFail(err)
	}
	if err := syncDir(dst); err != nil {
		return err
	}
	return writeJSON(stdout, map[string]interface{}{"ok": true, "files": files, "bytes": total})
}
