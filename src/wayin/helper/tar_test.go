package main

// The tar and rm personalities, fed archives built the way Skaffold and
// Tilt build theirs (their code paraphrased below), through the same entry
// points the binary uses.

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// skaffoldTar builds an archive as Skaffold's util.CreateMappedTar does:
// for each local file, tar.FileInfoHeader(Lstat(src)) with Name set to the
// absolute container path (e.g. "/ko-app/hello"), then the content.
func skaffoldTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	srcs := make([]string, 0, len(files))
	for src := range files {
		srcs = append(srcs, src)
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		fi, err := os.Lstat(src)
		if err != nil {
			t.Fatal(err)
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			t.Fatal(err)
		}
		h.Name = filepath.ToSlash(files[src])
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(readFile(t, src)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// member is one entry of a hand-made archive.
type member struct {
	name, body, link string
	typ              byte
	mode             int64
}

// archive is a tar stream of ms (regular files 0644 unless set).
func archive(t testing.TB, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := m.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: m.name, Typeflag: typ, Mode: mode, Linkname: m.link, ModTime: time.Unix(1_600_000_000, 0)}
		if typ == tar.TypeReg {
			h.Size = int64(len(m.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(m.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// tree lists everything under dir: path → type, mode and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := os.Lstat(p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			v += " " + string(readFile(t, p))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			v += " -> " + l
		}
		out[rel] = v
		return nil
	})
	return out
}

func TestTarArgumentStyles(t *testing.T) {
	for _, argv := range [][]string{
		{"xmf", "-", "-C", "/", "--no-same-owner"}, // Skaffold (kubectl.go, docker.go)
		{"-C", "/", "-x", "-f", "-"},               // Tilt (containerupdate/tar.go)
		{"-xmf", "-", "--directory=/", "--no-same-owner"},
		{"--extract", "--file", "-", "-C/", "--touch", "-o"},
		{"x", "-f-", "-C", "/"},
	} {
		o, err := parseTarArgs(argv)
		if err != nil {
			t.Fatalf("%q: %v", argv, err)
		}
		if !o.extract || o.file != "-" || o.dir != "/" {
			t.Fatalf("%q: %+v", argv, o)
		}
	}
	o, _ := parseTarArgs([]string{"xmf", "-", "-C", "/", "--no-same-owner"})
	if !o.touch || o.sameOwner != -1 {
		t.Fatalf("Skaffold's m and --no-same-owner: %+v", o)
	}
	o, _ = parseTarArgs([]string{"-C", "/", "-x", "-f", "-"})
	if o.touch || o.sameOwner != 0 {
		t.Fatalf("Tilt keeps times and the default owner rule: %+v", o)
	}
	for argv, want := range map[string]string{
		"czf - /x":             "operation -c is not supported",
		"-xzf -":               "unsupported option -z",
		"--gzip -xf -":         "unsupported option --gzip",
		"-xf - etc/passwd":     "selected members",
		"-C /":                 "no -x given",
		"-x":                   "no -f given",
		"xf":                   "option f needs an argument",
		"-xf - --exclude=x":    "unsupported option --exclude=x",
		"-xf - --directory":    "needs an argument",
		"tf -":                 "operation -t is not supported",
		"-x -f - -- a":         "selected members",
		"--warning=no-x -xf -": "unsupported option --warning=no-x",
	} {
		_, err := parseTarArgs(strings.Fields(argv))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", argv, err, want)
		}
	}
}

func runTarIn(t *testing.T, dir string, stream []byte, argv ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runTar(append(argv, "-C", dir), bytes.NewReader(stream), &stdout, &stderr)
	return code, stderr.String()
}

func TestTarExtractsSkaffoldsArchiveAtomically(t *testing.T) {
	local, root := t.TempDir(), t.TempDir()
	bin := filepath.Join(local, "hello")
	page := filepath.Join(local, "index.html")
	writeFile(t, bin, []byte("new binary"), 0o755)
	writeFile(t, page, []byte("<p>new</p>"), 0o644)
	writeFile(t, filepath.Join(root, "ko-app", "hello"), []byte("old binary"), 0o755)
	old, _ := os.Stat(filepath.Join(root, "ko-app", "hello"))
	stream := skaffoldTar(t, map[string]string{bin: "/ko-app/hello", page: "/var/run/ko/static/index.html"})

	code, stderr := runTarIn(t, root, stream, "xmf", "-", "--no-same-owner")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := string(readFile(t, filepath.Join(root, "ko-app", "hello"))); got != "new binary" {
		t.Fatal(got)
	}
	if m := modeOf(t, filepath.Join(root, "ko-app", "hello")); m.Perm() != 0o755 {
		t.Fatalf("mode %v", m)
	}
	if m := modeOf(t, filepath.Join(root, "var/run/ko/static/index.html")); m.Perm() != 0o644 {
		t.Fatalf("mode %v", m)
	}
	// Replaced by rename: a new inode (a running process keeps the old
	// one), and no temporary file left.
	now, _ := os.Stat(filepath.Join(root, "ko-app", "hello"))
	if now.Sys().(*syscall.Stat_t).Ino == old.Sys().(*syscall.Stat_t).Ino {
		t.Fatal("written in place, not renamed")
	}
	if l := leftovers(t, root); len(l) != 0 {
		t.Fatalf("left %v", l)
	}
	// m: the time is now, not the local file's.
	if time.Since(now.ModTime()) > time.Hour {
		t.Fatalf("mtime %v restored despite m", now.ModTime())
	}
}

func TestTarTiltArchiveKeepsTimesAndMakesDirs(t *testing.T) {
	root := t.TempDir()
	// Tilt's ArchiveBuilder: relative names, the synced directory itself
	// first, uid/gid cleared.
	stream := archive(t,
		member{name: "app/static", typ: tar.TypeDir, mode: 0o750},
		member{name: "app/static/a.txt", body: "A", mode: 0o600},
		member{name: "app/static/link", typ: tar.TypeSymlink, link: "a.txt"},
	)
	code, stderr := runTarIn(t, root, stream, "-x", "-f", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := map[string]string{
		"app":              "drwxr-xr-x",
		"app/static":       "drwxr-x---",
		"app/static/a.txt": "-rw------- A",
		"app/static/link":  "Lrwxrwxrwx -> a.txt",
	}
	if got := tree(t, root); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	fi, _ := os.Stat(filepath.Join(root, "app/static/a.txt"))
	if !fi.ModTime().Equal(time.Unix(1_600_000_000, 0)) {
		t.Fatalf("mtime %v not restored", fi.ModTime())
	}
}

func TestHostileArchivesWriteNothing(t *testing.T) {
	good := member{name: "/ko-app/hello", body: "fine"}
	cases := map[string][]member{
		"dot-dot":                {good, {name: "../escape", body: "x"}},
		"dot-dot inside":         {good, {name: "ko-app/../../escape", body: "x"}},
		"absolute dot-dot":       {good, {name: "/../escape", body: "x"}},
		"through own symlink":    {{name: "ko-app/l", typ: tar.TypeSymlink, link: "../.."}, {name: "ko-app/l/escape", body: "x"}},
		"through own symlink 2":  {{name: "d", typ: tar.TypeSymlink, link: "sub"}, {name: "d/x", body: "x"}},
		"symlink leaving root":   {good, {name: "ko-app/up", typ: tar.TypeSymlink, link: "../../etc"}},
		"absolute symlink":       {good, {name: "ko-app/abs", typ: tar.TypeSymlink, link: "/etc/passwd"}},
		"hard link":              {good, {name: "ko-app/h", typ: tar.TypeLink, link: "ko-app/hello"}},
		"device":                 {good, {name: "ko-app/dev", typ: tar.TypeChar}},
		"file over own file dir": {good, {name: "ko-app/hello/x", body: "x"}},
		"dir over own file":      {good, {name: "ko-app/hello", typ: tar.TypeDir}},
		"replaces the root":      {good, {name: ".", body: "x"}},
	}
	for name, ms := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			writeFile(t, filepath.Join(root, "keep"), []byte("k"), 0o644)
			before := tree(t, base)
			code, stderr := runTarIn(t, root, archive(t, ms...), "xmf", "-", "--no-same-owner")
			if code != exitTarFatal || !strings.HasPrefix(stderr, "tar: ") {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if after := tree(t, base); !reflect.DeepEqual(before, after) {
				t.Fatalf("the file system changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// A symlink in the container that leads outside the root is not
	// followed either.
	base := t.TempDir()
	root := filepath.Join(base, "root")
	os.MkdirAll(filepath.Join(base, "outside"), 0o755)
	os.MkdirAll(root, 0o755)
	os.Symlink("../outside", filepath.Join(root, "out"))
	code, stderr := runTarIn(t, root, archive(t, member{name: "out/x", body: "x"}), "-x", "-f", "-")
	if code != exitTarFatal || !strings.Contains(stderr, "outside") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(base, "outside", "x")); !os.IsNotExist(err) {
		t.Fatal("wrote through the container's symlink")
	}
	// A truncated archive (the sender died) writes nothing either.
	full := archive(t, member{name: "a", body: "A"}, member{name: "b", body: strings.Repeat("B", 4000)})
	root = t.TempDir()
	if code, _ := runTarIn(t, root, full[:1500], "-x", "-f", "-"); code != exitTarFatal {
		t.Fatalf("truncated archive: exit %d", code)
	}
	if got := tree(t, root); len(got) != 0 {
		t.Fatalf("truncated archive left %v", got)
	}
}

func TestTarDropsTheDiscardDirectory(t *testing.T) {
	root := t.TempDir()
	old := discardDir
	discardDir = filepath.Join(root, "var/run/gohot/discard")
	defer func() { discardDir = old }()
	stream := archive(t, member{name: "/var/run/gohot/discard/main.go", body: "package main"}, member{name: "/kept", body: "k"})
	if code, stderr := runTarIn(t, root, stream, "xmf", "-", "--no-same-owner"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := tree(t, root); !reflect.DeepEqual(got, map[string]string{"kept": "-rw-r--r-- k"}) {
		t.Fatalf("got %v", got)
	}
}

func TestPersonalityByName(t *testing.T) {
	for name, want := range map[string]bool{"tar": true, "/var/run/gohot/bin/tar": true, "rm": true, "helper": false, "/var/run/gohot/helper": false} {
		if got := personality(name) != nil; got != want {
			t.Errorf("%s: %v", name, got)
		}
	}
}

func TestRmRf(t *testing.T) {
	dir := t.TempDir()
	a, b, d := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "d")
	writeFile(t, a, []byte("a"), 0o644)
	writeFile(t, b, []byte("b"), 0o644)
	writeFile(t, filepath.Join(d, "x", "y"), []byte("y"), 0o644)
	rm := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		return runRmRf(args, nil, &stdout, &stderr), stderr.String()
	}
	// Skaffold: rm -rf -- PATHS (a missing one is fine with -f).
	if code, e := rm("-rf", "--", a, filepath.Join(dir, "missing")); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	// Tilt: rm -rf PATHS, directories included.
	if code, e := rm("-rf", b, d); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	if got := tree(t, dir); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
	writeFile(t, filepath.Join(d, "x"), []byte("x"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-r", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"-f", d}, "Is a directory"},
		{[]string{"-rfi", d}, "unsupported option -i"},
		{[]string{"--no-preserve-root", "-rf", "/"}, "unsupported option"},
		{[]string{"-rf", "/"}, "dangerous"},
		{[]string{"-rf", "."}, "refusing"},
		{[]string{"-r"}, "missing operand"},
	} {
		code, e := rm(c.args...)
		if code != 1 || !strings.Contains(e, c.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", c.args, code, e, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "x")); err != nil {
		t.Fatal("refused removals removed something")
	}
	if code, _ := rm("-f"); code != 0 {
		t.Fatal("rm -f with no operand is fine")
	}
}
