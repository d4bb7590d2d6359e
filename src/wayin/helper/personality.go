// Personalities: the helper answers as `tar` and `rm` when it is called by
// those names (dev images link them to it in a directory first on PATH),
// so Skaffold's and Tilt's file syncs work on bases with neither.

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// discardDir is where a Skaffold sync rule sends files that exist only to
// trigger its sync hooks (Go sources: gohot's hook rebuilds the binary);
// `tar` reads members under it and drops them. Keep in sync with
// crate::layout::DISCARD_DIR.
var discardDir = "/var/run/gohot/discard"

// personality returns the entry point for the name the helper was run
// under, or nil for the helper itself.
func personality(argv0 string) func(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch filepath.Base(argv0) {
	case "tar":
		return runTar
	case "rm":
		return runRmRf
	}
	return nil
}

// runRmRf is the `rm` personality: `rm [-r|-R] [-f] [-v] [--] PATH...`, as
// Skaffold (`rm -rf -- PATHS`) and Tilt (`rm -rf PATHS`) run it. Files go
// with one unlink each and their directory is fsynced; messages and the
// exit status are GNU rm's (1 when any operand failed).
func runRmRf(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var recursive, force, verbose bool
	var paths []string
	opts := true
	for _, a := range args {
		switch {
		case opts && a == "--":
			opts = false
		case opts && (a == "--recursive"):
			recursive = true
		case opts && a == "--force":
			force = true
		case opts && a == "--verbose":
			verbose = true
		case opts && len(a) > 1 && a[0] == '-' && a[1] != '-':
			for _, l := range a[1:] {
				switch l {
				case 'r', 'R':
					recursive = true
				case 'f':
					force = true
				case 'v':
					verbose = true
				default:
					fmt.Fprintf(stderr, "rm: unsupported option -%c; gohot's dev-image rm takes -r, -f, -v and paths\n", l)
					return 1
				}
			}
		case opts && len(a) > 2 && a[:2] == "--":
			fmt.Fprintf(stderr, "rm: unsupported option %s; gohot's dev-image rm takes -r, -f, -v and paths\n", a)
			return 1
		default:
			paths = append(paths, a)
		}
	}
	if len(paths) == 0 {
		if force {
			return 0
		}
		fmt.Fprintln(stderr, "rm: missing operand")
		return 1
	}
	code := 0
	for _, p := range paths {
		if err := removeOne(p, recursive, force); err != nil {
			fmt.Fprintf(stderr, "rm: %v\n", err)
			code = 1
			continue
		}
		if verbose {
			fmt.Fprintf(stdout, "removed '%s'\n", p)
		}
	}
	return code
}

func removeOne(p string, recursive, force bool) error {
	clean := filepath.Clean(p)
	if base := filepath.Base(clean); base == "." || base == ".." || filepath.Base(p) == "." || filepath.Base(p) == ".." {
		return fmt.Errorf("refusing to remove '.' or '..' directory: skipping '%s'", p)
	}
	if abs, err := filepath.Abs(clean); err == nil && abs == "/" {
		return fmt.Errorf("it is dangerous to operate recursively on '/'")
	}
	fi, err := os.Lstat(clean)
	if err != nil {
		if os.IsNotExist(err) && force {
			return nil
		}
		return fmt.Errorf("cannot remove '%s': %v", p, unwrapPath(err))
	}
	if fi.IsDir() {
		if !recursive {
			return fmt.Errorf("cannot remove '%s': Is a directory", p)
		}
		if err := os.RemoveAll(clean); err != nil {
			return fmt.Errorf("cannot remove '%s': %v", p, unwrapPath(err))
		}
	} else if err := os.Remove(clean); err != nil {
		return fmt.Errorf("cannot remove '%s': %v", p, unwrapPath(err))
	}
	return syncDir(filepath.Dir(clean))
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
