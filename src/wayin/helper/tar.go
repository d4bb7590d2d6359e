// tar: the helper installed as `tar` in dev images, answering the file
// syncs of Skaffold (`tar xmf - -C / --no-same-owner`) and Tilt
// (`tar -C / -x -f -`) on bases with no tar, with every file written
// atomically.

package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// exitTarFatal is GNU tar's exit status for a fatal error; Tilt reads it.
const exitTarFatal = 2

// tarOpts is an extraction request, as parsed from GNU tar's command line.
type tarOpts struct {
	extract   bool
	file      string // "-" is stdin
	dir       string // -C; "" is the working directory
	touch     bool   // -m: do not restore modification times
	sameOwner int    // -1 --no-same-owner, 1 --same-owner, 0 default (root: same owner)
	samePerms bool   // -p: keep setuid/setgid bits too
	verbose   bool
}

// tarUsage is what the error of an unsupported invocation recommends.
const tarUsage = "gohot's dev-image tar only extracts an archive atomically: " +
	"tar x[m][o][p][v]f FILE [-C DIR] [--no-same-owner] (Skaffold: `tar xmf - -C / --no-same-owner`, Tilt: `tar -C / -x -f -`)"

// tarShortWithArg are the option letters that take an argument.
var tarShortWithArg = map[byte]bool{'f': true, 'C': true}

// parseTarArgs reads GNU tar's three option styles: a leading bundle of
// letters without a dash ("xmf"), short options ("-x", "-xf -", "-C/") and
// long ones ("--file=-", "--directory /").
func parseTarArgs(args []string) (tarOpts, error) {
	o := tarOpts{}
	var pending []byte // option letters of a traditional bundle still waiting for their argument
	set := func(letter byte, val string) error {
		switch letter {
		case 'x':
			o.extract = true
		case 'f':
			o.file = val
		case 'C':
			o.dir = val
		case 'm':
			o.touch = true
		case 'o':
			o.sameOwner = -1
		case 'p':
			o.samePerms = true
		case 'v':
			o.verbose = true
		case 'c', 't', 'r', 'u', 'A', 'd':
			return fmt.Errorf("operation -%c is not supported; %s", letter, tarUsage)
		default:
			return fmt.Errorf("unsupported option -%c; %s", letter, tarUsage)
		}
		return nil
	}
	i := 0
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		// Traditional style: every letter is an option; those taking an
		// argument take the next words in order.
		for j := 0; j < len(args[0]); j++ {
			if tarShortWithArg[args[0][j]] {
				pending = append(pending, args[0][j])
			} else if err := set(args[0][j], ""); err != nil {
				return o, err
			}
		}
		i = 1
		for _, l := range pending {
			if i >= len(args) {
				return o, fmt.Errorf("option %c needs an argument", l)
			}
			if err := set(l, args[i]); err != nil {
				return o, err
			}
			i++
		}
	}
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return o, fmt.Errorf("extracting selected members (%q) is not supported; %s", args[i+1], tarUsage)
			}
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			needs := map[string]byte{"file": 'f', "directory": 'C'}
			flags := map[string]byte{
				"extract": 'x', "get": 'x', "touch": 'm', "no-same-owner": 'o',
				"preserve-permissions": 'p', "same-permissions": 'p', "verbose": 'v',
			}
			switch {
			case needs[name] != 0:
				if !hasVal {
					if i+1 >= len(args) {
						return o, fmt.Errorf("option --%s needs an argument", name)
					}
					i++
					val = args[i]
				}
				if err := set(needs[name], val); err != nil {
					return o, err
				}
			case hasVal:
				return o, fmt.Errorf("unsupported option %s; %s", a, tarUsage)
			case flags[name] != 0:
				if err := set(flags[name], ""); err != nil {
					return o, err
				}
			case name == "same-owner":
				o.sameOwner = 1
			case name == "overwrite" || name == "no-overwrite-dir" || name == "unlink-first":
				// What extraction does anyway: files are replaced (by
				// rename), existing directories are left as they are.
			default:
				return o, fmt.Errorf("unsupported option %s; %s", a, tarUsage)
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				l := a[j]
				if !tarShortWithArg[l] {
					if err := set(l, ""); err != nil {
						return o, err
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return o, fmt.Errorf("option -%c needs an argument", l)
					}
					i++
					val = args[i]
				}
				if err := set(l, val); err != nil {
					return o, err
				}
				break
			}
		default:
			return o, fmt.Errorf("extracting selected members (%q) is not supported; %s", a, tarUsage)
		}
	}
	if !o.extract {
		return o, fmt.Errorf("no -x given; %s", tarUsage)
	}
	if o.file == "" {
		return o, fmt.Errorf("no -f given (tar's default device is not used here); %s", tarUsage)
	}
	return o, nil
}

// runTar is the `tar` personality: parse, extract, report like GNU tar
// (messages on stderr prefixed "tar: ", exit status 2 on failure).
func runTar(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseTarArgs(args)
	if err == nil {
		in := stdin
		if o.file != "-" {
			f, ferr := os.Open(o.file)
			if ferr != nil {
				err = ferr
			} else {
				defer f.Close()
				in = f
			}
		}
		if err == nil {
			err = extractTar(in, o, os.Geteuid() == 0, stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tar: %v\n", err)
		return exitTarFatal
	}
	return 0
}

// hostile is a refused member: the whole archive is refused with it.
type hostile struct {
	name, why string
}

func (h *hostile) Error() string {
	return fmt.Sprintf("refusing member %q: %s; nothing was extracted", h.name, h.why)
}

// memberPath is a member's name as GNU tar extracts it (leading '/'s and
// "./" removed), cleaned; "" is the extraction directory itself.
func memberPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", &hostile{name, "the name contains NUL"}
	}
	rel := strings.TrimLeft(name, "/")
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", &hostile{name, "the name contains '..'"}
		}
	}
	rel = path.Clean(rel)
	if rel == "." {
		return "", nil
	}
	if path.IsAbs(rel) || strings.HasPrefix(rel, "../") || rel == ".." {
		return "", &hostile{name, "the name leaves the extraction directory"}
	}
	return rel, nil
}

// staged is one member written beside its destination, waiting for commit:
// a regular file (prepared, not yet published), or a symlink made at tmp.
type staged struct {
	file      *atomicFile
	tmp, dest string
}

// drop removes what staging wrote for this member.
func (s *staged) drop() {
	if s.file != nil {
		s.file.abort()
	} else {
		os.Remove(s.tmp)
	}
}

// extraction stages every member before any becomes visible: a hostile
// member anywhere in the archive leaves the file system as it was.
type extraction struct {
	root     string // the extraction directory, symlinks resolved
	o        tarOpts
	root0    bool                   // running as root
	files    map[string]*staged     // member path -> staged file or symlink
	order    []string               // member paths in archive order (last wins)
	symlinks map[string]bool        // member paths that are symlinks
	created  []string               // directories made while staging, in creation order
	dirModes map[string]os.FileMode // directories made for a directory member: their mode, set at commit
}

// extractTar extracts the archive on r into o.dir: every member is checked
// and staged (regular files and symlinks as temporary files in their
// destination's directory), then each is renamed into place. A hostile or
// broken archive removes what was staged and writes nothing.
func extractTar(r io.Reader, o tarOpts, asRoot bool, stdout io.Writer) error {
	dir := o.dir
	if dir == "" {
		dir = "."
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("cannot change to directory %s: %v", dir, err)
	}
	if root, err = filepath.Abs(root); err != nil {
		return err
	}
	x := &extraction{
		root: root, o: o, root0: asRoot,
		files: map[string]*staged{}, symlinks: map[string]bool{}, dirModes: map[string]os.FileMode{},
	}
	if err := x.stage(r, stdout); err != nil {
		x.rollback()
		return err
	}
	return x.commit()
}

func (x *extraction) stage(r io.Reader, stdout io.Writer) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("this does not look like a tar archive: %v", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		rel, err := memberPath(h.Name)
		if err != nil {
			return err
		}
		if abs := filepath.Join(x.root, filepath.FromSlash(rel)); abs == discardDir || strings.HasPrefix(abs, discardDir+"/") {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return fmt.Errorf("%s: %v", h.Name, err)
			}
			continue
		}
		if err := x.checkParents(h.Name, rel); err != nil {
			return err
		}
		if x.o.verbose {
			fmt.Fprintln(stdout, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			if rel == "" {
				return &hostile{h.Name, "a file cannot replace the extraction directory"}
			}
			err = x.stageFile(h, rel, tr)
		case tar.TypeSymlink:
			if rel == "" {
				return &hostile{h.Name, "a symlink cannot replace the extraction directory"}
			}
			err = x.stageSymlink(h, rel)
		case tar.TypeDir:
			err = x.stageDir(h, rel)
		case tar.TypeLink:
			return &hostile{h.Name, "hard links are not supported"}
		default:
			return &hostile{h.Name, fmt.Sprintf("member type %q (devices, FIFOs, …) is not supported", h.Typeflag)}
		}
		if err != nil {
			return err
		}
	}
}

// checkParents refuses a member below a symlink of this archive (a later
// member writing through an earlier link is how archives escape), below a
// file of this archive, or whose existing parent resolves outside the root.
func (x *extraction) checkParents(name, rel string) error {
	if rel == "" {
		return nil
	}
	for p := path.Dir(rel); p != "."; p = path.Dir(p) {
		if x.symlinks[p] {
			return &hostile{name, fmt.Sprintf("it would be written through the symlink %s of the same archive", p)}
		}
		if _, ok := x.files[p]; ok {
			return &hostile{name, fmt.Sprintf("%s is a file of the same archive", p)}
		}
	}
	parent := filepath.Dir(filepath.Join(x.root, filepath.FromSlash(rel)))
	// The deepest existing ancestor, resolved, must stay inside the root.
	for p := parent; ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			if !within(x.root, real) {
				return &hostile{name, fmt.Sprintf("%s resolves to %s, outside %s", p, real, x.root)}
			}
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return fmt.Errorf("%s: %s is not a directory", name, p)
			}
			return nil
		}
		if !os.IsNotExist(err) {
			return fmt.Errorf("%s: %v", name, err)
		}
		if p == x.root || p == filepath.Dir(p) {
			return nil
		}
	}
}

// mkdirs makes the missing directories of dir, recording them for rollback.
func (x *extraction) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if err := x.mkdirs(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	x.created = append(x.created, dir)
	return nil
}

func (x *extraction) fileMode(h *tar.Header) uint32 {
	if x.o.samePerms {
		return uint32(h.Mode) & 0o7777
	}
	return uint32(h.Mode) & 0o1777
}

// destFor checks the destination of a file or symlink member: an existing
// directory there is refused (rename cannot replace it).
func (x *extraction) destFor(name, rel string) (string, error) {
	dest := filepath.Join(x.root, filepath.FromSlash(rel))
	if fi, err := os.Lstat(dest); err == nil && fi.IsDir() {
		return "", fmt.Errorf("%s: cannot replace the directory %s with a file", name, dest)
	}
	if err := x.mkdirs(filepath.Dir(dest)); err != nil {
		return "", fmt.Errorf("%s: %v", name, err)
	}
	return dest, nil
}

func (x *extraction) replace(rel string, s *staged) {
	if old, ok := x.files[rel]; ok {
		old.drop()
	} else {
		x.order = append(x.order, rel)
	}
	x.files[rel] = s
	delete(x.symlinks, rel)
}

func (x *extraction) stageFile(h *tar.Header, rel string, body io.Reader) error {
	dest, err := x.destFor(h.Name, rel)
	if err != nil {
		return err
	}
	// Atomic, not durable, as put: the container's filesystem does not
	// outlive a crash (see atomicFile).
	f, err := newAtomicFile(dest, false, nil)
	if err != nil {
		return fmt.Errorf("%s: %v", h.Name, err)
	}
	x.replace(rel, &staged{file: f, dest: dest})
	if _, err := io.Copy(f, body); err != nil {
		return fmt.Errorf("%s: %v", h.Name, err)
	}
	if x.root0 && x.o.sameOwner >= 0 {
		if err := f.f.Chown(h.Uid, h.Gid); err != nil {
			return fmt.Errorf("%s: %v", h.Name, err)
		}
	}
	if err := f.prepare(x.fileMode(h)); err != nil {
		return fmt.Errorf("%s: %v", h.Name, err)
	}
	if !x.o.touch && !h.ModTime.IsZero() {
		if err := os.Chtimes(f.f.Name(), h.ModTime, h.ModTime); err != nil {
			return fmt.Errorf("%s: %v", h.Name, err)
		}
	}
	return nil
}

func (x *extraction) stageSymlink(h *tar.Header, rel string) error {
	target := h.Linkname
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return &hostile{h.Name, "empty or NUL in the link target"}
	}
	if path.IsAbs(target) {
		if x.root != "/" {
			return &hostile{h.Name, fmt.Sprintf("the absolute link target %s is outside %s", target, x.root)}
		}
	} else if t := path.Join(path.Dir(rel), target); t == ".." || strings.HasPrefix(t, "../") {
		return &hostile{h.Name, fmt.Sprintf("the link target %s leaves the extraction directory", target)}
	}
	dest, err := x.destFor(h.Name, rel)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".gohot-*")
	if err != nil {
		return fmt.Errorf("%s: %v", h.Name, err)
	}
	tmp.Close()
	s := &staged{tmp: tmp.Name(), dest: dest}
	x.replace(rel, s)
	if err := os.Remove(s.tmp); err != nil {
		return fmt.Errorf("%s: %v", h.Name, err)
	}
	if err := os.Symlink(target, s.tmp); err != nil {
		return fmt.Errorf("%s: %v", h.Name, err)
	}
	x.symlinks[rel] = true
	return nil
}

func (x *extraction) stageDir(h *tar.Header, rel string) error {
	if _, ok := x.files[rel]; ok {
		return &hostile{h.Name, "a directory replaces a file of the same archive"}
	}
	dest := filepath.Join(x.root, filepath.FromSlash(rel))
	fi, err := os.Lstat(dest)
	if err == nil {
		if fi.IsDir() {
			return nil // existing directories are left as they are
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if st, err := os.Stat(dest); err == nil && st.IsDir() {
				return nil // a link to a directory stays (it was checked to stay inside the root)
			}
		}
		return fmt.Errorf("%s: %s exists and is not a directory", h.Name, dest)
	}
	before := len(x.created)
	if err := x.mkdirs(dest); err != nil {
		return fmt.Errorf("%s: %v", h.Name, err)
	}
	if len(x.created) > before {
		// Its mode is set at commit, after its files are in: a read-only
		// directory could not receive them.
		x.dirModes[dest] = goMode(x.fileMode(h))
	}
	return nil
}

// rollback removes everything staging made, newest first.
func (x *extraction) rollback() {
	for _, s := range x.files {
		s.drop()
	}
	for i := len(x.created) - 1; i >= 0; i-- {
		os.Remove(x.created[i])
	}
}

// commit publishes every staged member in archive order (a rename each),
// then sets the modes of directories it created.
func (x *extraction) commit() error {
	for i, rel := range x.order {
		s := x.files[rel]
		var err error
		if s.file != nil {
			err = s.file.publish()
		} else {
			err = os.Rename(s.tmp, s.dest)
		}
		if err != nil {
			for _, rest := range x.order[i:] {
				x.files[rest].drop()
			}
			return err
		}
	}
	for i := len(x.created) - 1; i >= 0; i-- {
		if m, ok := x.dirModes[x.created[i]]; ok {
			if err := os.Chmod(x.created[i], m); err != nil {
				return err
			}
		}
	}
	return nil
}
