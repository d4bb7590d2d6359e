// rm: a sync rule's deletion.

package main

import (
	"io"
	"os"
	"path/filepath"
)

// cmdRm removes one file (a sync rule's deletion); a missing file is fine.
func cmdRm(argv []string, stdout io.Writer) error {
	a, err := parseArgs(argv)
	if err != nil {
		return err
	}
	if err := wantOperands(a, 1, "rm PATH"); err != nil {
		return err
	}
	p := filepath.Clean(a.pos[0])
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return fail("usage", "%s is a directory; rm removes files only", p)
	}
	removed := true
	if err := os.Remove(p); err != nil {
		if !os.IsNotExist(err) {
			return ioFail(err)
		}
		removed = false
	} else if err := syncDir(filepath.Dir(p)); err != nil {
		return err
	}
	return writeJSON(stdout, map[string]interface{}{"ok": true, "removed": removed})
}
