// Command gohot-helper is gohot's way into a running container.
//
// gohot embeds this file, builds it for the container's platform with the
// developer's own Go toolchain (CGO_ENABLED=0, -trimpath, -ldflags='-s -w')
// and places the static binary in the dev image at /var/run/gohot/helper.
// gohot then runs it through an exec stream (docker exec -i, Kubernetes exec):
// the payload goes in on stdin, one JSON status line comes out on stdout, and
// a failure also exits non-zero with a message on stderr. It needs no shell,
// no tar and nothing else from the image: ko's default base has neither.
//
// Standard library only, and nothing newer than Go 1.19, so that it builds
// offline with any toolchain a Go developer is likely to have.
//
// Subcommands (flags may come before or after the operands):
//
//	put DEST [-mode 0755] [-max-size BYTES]
//	    Reads a payload on stdin (format below), writes the new content to a
//	    temporary file in DEST's directory (.NAME.gohot-XXXX), checks its
//	    sha256, fsyncs, chmods, renames it over DEST and fsyncs the directory.
//	    On any failure the temporary file is removed and DEST is untouched.
//	    Prints {"ok":true,"kind":"full|delta","bytes":N,"sha256":"..."}.
//	    A DELTA whose base is not DEST's current content fails with exit
//	    code 3 and {"ok":false,"error":"base-mismatch",...}: resend as FULL.
//	hash PATH
//	    Prints {"sha256":"...","size":N} or {"missing":true}.
//	list DIR [-exclude PATTERN]...
//	    Prints one JSON object {"root":DIR,"entries":[...],"skipped":[...]}
//	    describing every entry under DIR, recursively, without following
//	    symlinks (DIR itself is resolved). Entries are sorted by path; each
//	    has path (relative, '/'-separated), type (file|dir|symlink|other),
//	    size, mode (permission bits incl. setuid/setgid/sticky), mtime (unix
//	    nanoseconds), sha256 (files), target (symlinks) and error (a file
//	    that could not be read or changed while it was hashed). A PATTERN
//	    without '/' matches an entry's base name, one with '/' its whole
//	    relative path (path.Match syntax); an excluded directory is pruned.
//	    Names that are not valid UTF-8 cannot travel in JSON: they are listed
//	    in "skipped" (quoted) instead.
//	get DIR
//	    Reads newline-separated relative paths on stdin up to an empty line
//	    (or EOF), all of them before answering, and writes ONE gzip stream on stdout. Inside it, for each
//	    requested path in order, either
//	        {"path":P,"size":N,"mode":M,"mtime":T}\n  N raw bytes  {"sha256":H}\n
//	    or, when the file changed while it was read (the N bytes are then
//	    zero-padded or cut and must be discarded),
//	        {"path":P,"size":N,"mode":M,"mtime":T}\n  N bytes  {"error":E}\n
//	    or, for a path that is refused or unreadable,
//	        {"path":P,"error":E}\n
//	    and at the end {"end":true,"files":F,"errors":E}\n. A stream without
//	    the end line was cut short. Paths that are empty, absolute, not in
//	    clean form, contain "..", NUL or a backslash, or resolve (through
//	    symlinks) outside DIR are refused; only regular files are sent.
//	seed SRC DST [-mode 0755]
//	    Copies SRC to DST with the same temp+fsync+rename discipline as put
//	    (an init container seeding an emptyDir). A directory SRC is copied
//	    recursively, each file atomically, symlinks recreated as symlinks.
//	version
//	    Prints {"name":"gohot-helper","protocol":1,"go":...,"arch":...}.
//
// Put payload: one JSON header line (at most 4096 bytes), then exactly
// "body" bytes holding one gzip member and nothing after it:
//
//	{"v":2,"kind":"full","size":N,"sha256":HEX,"body":B}\n  gzip(new content)
//	{"v":2,"kind":"delta","size":N,"sha256":HEX,"base_size":M,"base_sha256":HEX,"body":B}\n  gzip(delta ops)
//
// Every input is framed by its own lengths (the put body) or terminator (the
// get request's empty line), and the helper never reads past it: on the
// Kubernetes exec protocol v4 (servers before 1.30) a client cannot close
// stdin without closing the whole stream, exit status included.
//
// Delta ops (inside the gzip member) are records, repeated until exactly
// "size" bytes have been produced:
//
//	varint  seek      signed (zig-zag, as encoding/binary.PutVarint); moves the base cursor
//	uvarint add_len   then add_len bytes d: out = base[cursor+i] + d[i] (mod 256); cursor += add_len
//	uvarint lit_len   then lit_len literal bytes copied to the output
//
// A record must produce at least one byte. Every length and cursor position
// is bounds-checked against "size" and "base_size", so a corrupt or hostile
// payload fails cleanly; memory use does not depend on the payload.
//
// Exit codes: 0 ok, 1 failure, 2 usage, 3 base-mismatch (put only).
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

const (
	protocol = 2

	exitFail         = 1
	exitUsage        = 2
	exitBaseMismatch = 3

	maxHeaderLine   = 4096
	defaultMaxSize  = int64(4) << 30 // what put accepts unless -max-size says otherwise
	maxGetRequests  = 1 << 20
	maxGetPathBytes = 4096
	ioChunk         = 64 << 10
)

// failure is an error with a machine-readable code and an exit status.
type failure struct {
	code string
	exit int
	msg  string
}

func (f *failure) Error() string { return f.msg }

func fail(code string, format string, args ...interface{}) error {
	exit := exitFail
	switch code {
	case "usage":
		exit = exitUsage
	case "base-mismatch":
		exit = exitBaseMismatch
	}
	return &failure{code: code, exit: exit, msg: fmt.Sprintf(format, args...)}
}

func ioFail(err error) error {
	var f *failure
	if errors.As(err, &f) {
		return err
	}
	return &failure{code: "io", exit: exitFail, msg: err.Error()}
}

func main() {
	if len(os.Args) < 2 {
		os.Exit(finish("", fail("usage", "usage: helper put|hash|list|get|seed|rm|version ...")))
	}
	cmd, rest := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "put":
		err = cmdPut(rest, os.Stdin, os.Stdout)
	case "hash":
		err = cmdHash(rest, os.Stdout)
	case "list":
		err = cmdList(rest, os.Stdout)
	case "get":
		err = cmdGet(rest, os.Stdin, os.Stdout)
	case "seed":
		err = cmdSeed(rest, os.Stdout)
	case "rm":
		err = cmdRm(rest, os.Stdout)
	case "version", "-version", "--version":
		err = writeJSON(os.Stdout, map[string]interface{}{
			"name": "gohot-helper", "protocol": protocol,
			"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		})
	default:
		err = fail("usage", "unknown subcommand %q (want put, hash, list, get, seed, rm or version)", cmd)
	}
	os.Exit(finish(cmd, err))
}

// finish reports err (if any) and returns the exit code. Every subcommand
// except get also prints a JSON status line on stdout; get's stdout is a
// binary stream, which a missing end line marks as failed.
func finish(cmd string, err error) int {
	if err == nil {
		return 0
	}
	f, ok := err.(*failure)
	if !ok {
		f = &failure{code: "io", exit: exitFail, msg: err.Error()}
	}
	if cmd != "get" {
		_ = writeJSON(os.Stdout, map[string]interface{}{"ok": false, "error": f.code, "message": f.msg})
	}
	if cmd == "" {
		cmd = "helper"
	}
	fmt.Fprintf(os.Stderr, "gohot-helper %s: %s: %s\n", cmd, f.code, f.msg)
	return f.exit
}

func writeJSON(w io.Writer, v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return ioFail(err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// ---------------------------------------------------------------- arguments

type cmdArgs struct {
	pos      []string
	mode     uint32
	hasMode  bool
	excludes []string
	maxSize  int64
	waitExec time.Duration
}

// parseArgs accepts flags before or after operands (-flag V, -flag=V, and the
// same with --); "--" ends flags.
func parseArgs(in []string, allowed ...string) (cmdArgs, error) {
	a := cmdArgs{maxSize: defaultMaxSize}
	ok := map[string]bool{}
	for _, f := range allowed {
		ok[f] = true
	}
	for i := 0; i < len(in); i++ {
		s := in[i]
		if s == "--" {
			a.pos = append(a.pos, in[i+1:]...)
			break
		}
		if len(s) < 2 || s[0] != '-' {
			a.pos = append(a.pos, s)
			continue
		}
		name := strings.TrimLeft(s, "-")
		val, hasVal := "", false
		if k, v, found := strings.Cut(name, "="); found {
			name, val, hasVal = k, v, true
		}
		if !ok[name] {
			return a, fail("usage", "unknown flag %s", s)
		}
		if !hasVal {
			if i+1 >= len(in) {
				return a, fail("usage", "flag %s needs a value", s)
			}
			i++
			val = in[i]
		}
		switch name {
		case "mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil || m > 0o7777 {
				return a, fail("usage", "bad -mode %q (want octal, e.g. 0755)", val)
			}
			a.mode, a.hasMode = uint32(m), true
		case "exclude":
			if _, err := path.Match(val, ""); err != nil {
				return a, fail("usage", "bad -exclude pattern %q: %v", val, err)
			}
			a.excludes = append(a.excludes, val)
		case "wait-exec":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return a, fail("usage", "bad -wait-exec %q (want a duration, e.g. 5s)", val)
			}
			a.waitExec = d
		case "max-size":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return a, fail("usage", "bad -max-size %q", val)
			}
			a.maxSize = n
		}
	}
	return a, nil
}

func wantOperands(a cmdArgs, n int, usage string) error {
	if len(a.pos) != n {
		return fail("usage", "usage: helper %s", usage)
	}
	for _, p := range a.pos {
		if p == "" {
			return fail("usage", "usage: helper %s (empty operand)", usage)
		}
	}
	return nil
}

// -------------------------------------------------------------------- modes

// unixMode converts Go's FileMode to classic unix permission bits.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// goMode converts classic unix permission bits to a FileMode for Chmod.
func goMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// -------------------------------------------------------- atomic file write

// atomicFile is a temporary file in the destination's directory that becomes
// the destination only through commit (fsync, chmod, rename, fsync dir).
type atomicFile struct {
	dest string
	f    *os.File
	buf  *bufio.Writer
	sum  hash.Hash
	n    int64
	done bool
}

func newAtomicFile(dest string) (*atomicFile, error) {
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
	a := &atomicFile{dest: dest, f: f, sum: sha256.New()}
	a.buf = bufio.NewWriterSize(f, 1<<20)
	return a, nil
}

func (a *atomicFile) Write(p []byte) (int, error) {
	a.sum.Write(p)
	n, err := a.buf.Write(p)
	a.n += int64(n)
	return n, err
}

func (a *atomicFile) hexSum() string { return hex.EncodeToString(a.sum.Sum(nil)) }

func (a *atomicFile) commit(mode uint32) error {
	if err := a.buf.Flush(); err != nil {
		return ioFail(err)
	}
	if err := a.f.Chmod(goMode(mode)); err != nil {
		return ioFail(err)
	}
	if err := a.f.Sync(); err != nil {
		return ioFail(err)
	}
	if err := a.f.Close(); err != nil {
		return ioFail(err)
	}
	if err := os.Rename(a.f.Name(), a.dest); err != nil {
		return ioFail(err)
	}
	a.done = true
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

// ---------------------------------------------------------------------- put

type putHeader struct {
	V          int    `json:"v"`
	Kind       string `json:"kind"`
	Size       *int64 `json:"size"`
	SHA256     string `json:"sha256"`
	BaseSize   *int64 `json:"base_size"`
	BaseSHA256 string `json:"base_sha256"`
	Body       *int64 `json:"body"`
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func readPutHeader(br *bufio.Reader, maxSize int64) (putHeader, error) {
	var h putHeader
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxHeaderLine {
		return h, fail("bad-payload", "header line longer than %d bytes", maxHeaderLine)
	}
	if err != nil {
		return h, fail("bad-payload", "no header line: %v", err)
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return h, fail("bad-payload", "bad header: %v", err)
	}
	if h.V != protocol {
		return h, fail("bad-payload", "payload version %d, this helper speaks %d", h.V, protocol)
	}
	if h.Size == nil || *h.Size < 0 || !isHex64(h.SHA256) {
		return h, fail("bad-payload", "header needs size and a lowercase hex sha256")
	}
	if *h.Size > maxSize {
		return h, fail("too-large", "payload says %d bytes, limit is %d", *h.Size, maxSize)
	}
	// gzip never grows data by more than a few bytes per 32 KiB block; a
	// delta's records are at most its output plus varints.
	if h.Body == nil || *h.Body < 0 || *h.Body > 2*maxSize+1<<20 {
		return h, fail("bad-payload", "header needs body, the length of the gzip member (at most about twice size)")
	}
	switch h.Kind {
	case "full":
	case "delta":
		if h.BaseSize == nil || *h.BaseSize < 0 || !isHex64(h.BaseSHA256) {
			return h, fail("bad-payload", "delta header needs base_size and base_sha256")
		}
	default:
		return h, fail("bad-payload", "unknown payload kind %q", h.Kind)
	}
	return h, nil
}

// boundedWriter refuses to write more than limit bytes in total.
type boundedWriter struct {
	w     io.Writer
	limit int64
	n     int64
}

func (b *boundedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.limit-b.n {
		return 0, fail("bad-payload", "payload produces more than the %d bytes its header announced", b.limit)
	}
	n, err := b.w.Write(p)
	b.n += int64(n)
	return n, err
}

func cmdPut(argv []string, stdin io.Reader, stdout io.Writer) error {
	a, err := parseArgs(argv, "mode", "max-size", "wait-exec")
	if err != nil {
		return err
	}
	if err := wantOperands(a, 1, "put DEST [-mode 0755] [-max-size BYTES] [-wait-exec DUR] < payload"); err != nil {
		return err
	}
	mode := uint32(0o755)
	if a.hasMode {
		mode = a.mode
	}
	br := bufio.NewReaderSize(stdin, ioChunk)
	var body *bufio.Reader
	err = put(filepath.Clean(a.pos[0]), mode, a.maxSize, a.waitExec, br, &body, stdout)
	if err != nil {
		// Print the status first, then drain the rest of the announced
		// body so that the sender never sees a broken pipe instead of our
		// answer (never more: stdin may stay open after the payload).
		code := finish("put", err)
		if body != nil {
			io.Copy(io.Discard, body)
		}
		os.Exit(code)
	}
	return nil
}

// put reads one payload from br and applies it; *body is set to the payload's
// body (limited to its announced length) as soon as the header is read.
func put(dest string, mode uint32, maxSize int64, waitExec time.Duration, br *bufio.Reader, body **bufio.Reader, stdout io.Writer) error {
	started := time.Now()
	h, err := readPutHeader(br, maxSize)
	if err != nil {
		return err
	}
	// A bufio.Reader is an io.ByteReader, so gzip reads through it without
	// buffering of its own: after the member, whatever is left is ours to see.
	lb := bufio.NewReaderSize(io.LimitReader(br, *h.Body), ioChunk)
	*body = lb
	var base io.ReaderAt
	if h.Kind == "delta" {
		data, err := openBase(dest, *h.BaseSize, h.BaseSHA256)
		if err != nil {
			return err
		}
		base = bytes.NewReader(data)
	}
	out, err := newAtomicFile(dest)
	if err != nil {
		return err
	}
	defer out.abort()
	w := &boundedWriter{w: out, limit: *h.Size}

	zr, err := gzip.NewReader(lb)
	if err != nil {
		return payloadErr(err)
	}
	zr.Multistream(false)
	zb := bufio.NewReaderSize(zr, ioChunk)
	if h.Kind == "full" {
		if _, err := io.Copy(w, zb); err != nil {
			return payloadErr(err)
		}
	} else if err := applyDelta(zb, base, *h.BaseSize, w); err != nil {
		return err
	}
	if w.n != *h.Size {
		return fail("bad-payload", "payload produced %d bytes, header announced %d", w.n, *h.Size)
	}
	// The op stream must end exactly here (this also checks gzip's CRC),
	// and nothing may follow the gzip member.
	if _, err := zb.ReadByte(); err != io.EOF {
		if err == nil {
			return fail("bad-payload", "data after the last delta record")
		}
		return payloadErr(err)
	}
	if _, err := lb.ReadByte(); err != io.EOF {
		return fail("bad-payload", "data after the gzip stream")
	}
	if got := out.hexSum(); got != h.SHA256 {
		return fail("hash-mismatch", "new content has sha256 %s, header says %s", got, h.SHA256)
	}
	if err := out.commit(mode); err != nil {
		return err
	}
	status := map[string]interface{}{"ok": true, "kind": h.Kind, "bytes": w.n, "sha256": h.SHA256, "write_ms": time.Since(started).Milliseconds()}
	if waitExec > 0 {
		pid, took := waitForExec(dest, waitExec)
		status["restart_ms"] = took.Milliseconds()
		if pid > 0 {
			status["pid"] = pid
		}
	}
	return writeJSON(stdout, status)
}

// waitForExec waits until some process runs the file now at dest, i.e. the
// supervisor has restarted the app on the new binary. A process still running
// the replaced binary shows "dest (deleted)" in /proc/PID/exe, so an exact
// match can only be a process started from the new file. Returns 0 on timeout.
func waitForExec(dest string, timeout time.Duration) (int, time.Duration) {
	start := time.Now()
	self := os.Getpid()
	for {
		if entries, err := os.ReadDir("/proc"); err == nil {
			for _, e := range entries {
				pid, err := strconv.Atoi(e.Name())
				if err != nil || pid == self {
					continue
				}
				if target, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && target == dest {
					return pid, time.Since(start)
				}
			}
		}
		if time.Since(start) >= timeout {
			return 0, time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func payloadErr(err error) error {
	var f *failure
	if errors.As(err, &f) {
		return err
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
		return fail("bad-payload", "corrupt or truncated payload: %v", err)
	}
	if _, ok := err.(*os.PathError); ok {
		return ioFail(err)
	}
	return fail("bad-payload", "corrupt payload: %v", err)
}

// openBase opens DEST and checks that it is the base the delta was made from.
// openBase reads the file a delta applies to, in one go (a delta's many
// small copies would otherwise each be a read, slow on FUSE-backed
// overlays), and checks it is the delta's base.
func openBase(dest string, size int64, sum string) ([]byte, error) {
	f, err := os.Open(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fail("base-mismatch", "%s does not exist; send the full content", dest)
	}
	if err != nil {
		return nil, ioFail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, ioFail(err)
	}
	if !st.Mode().IsRegular() {
		return nil, fail("usage", "%s is not a regular file", dest)
	}
	if st.Size() != size {
		return nil, fail("base-mismatch", "%s has %d bytes, the delta's base has %d", dest, st.Size(), size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, ioFail(err)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
		return nil, fail("base-mismatch", "%s has sha256 %s, the delta's base is %s", dest, hex.EncodeToString(got[:]), sum)
	}
	return data, nil
}

// applyDelta decodes delta records from ops and writes the result to w,
// reading the base through ReadAt (no base-sized allocation).
func applyDelta(ops *bufio.Reader, base io.ReaderAt, baseSize int64, w *boundedWriter) error {
	var cursor int64
	dbuf := make([]byte, ioChunk)
	obuf := make([]byte, ioChunk)
	for w.n < w.limit {
		seek, err := binary.ReadVarint(ops)
		if err != nil {
			return payloadErr(err)
		}
		addLen, err := binary.ReadUvarint(ops)
		if err != nil {
			return payloadErr(err)
		}
		litLen, err := binary.ReadUvarint(ops)
		if err != nil {
			return payloadErr(err)
		}
		room := uint64(w.limit - w.n)
		if addLen > room || litLen > room-addLen {
			return fail("bad-payload", "delta record writes past the announced size")
		}
		if addLen == 0 && litLen == 0 {
			return fail("bad-payload", "delta record produces nothing")
		}
		if (seek < 0 && -seek > cursor) || (seek > 0 && seek > baseSize-cursor) {
			return fail("bad-payload", "delta seeks outside the base")
		}
		cursor += seek
		if addLen > uint64(baseSize-cursor) {
			return fail("bad-payload", "delta reads past the end of the base")
		}
		for left := int64(addLen); left > 0; {
			n := int64(len(dbuf))
			if left < n {
				n = left
			}
			d, o := dbuf[:n], obuf[:n]
			if _, err := io.ReadFull(ops, d); err != nil {
				return payloadErr(err)
			}
			if _, err := base.ReadAt(o, cursor); err != nil {
				return ioFail(err)
			}
			for i := range d {
				d[i] += o[i]
			}
			if _, err := w.Write(d); err != nil {
				return err
			}
			cursor += n
			left -= n
		}
		if litLen > 0 {
			if _, err := io.CopyN(w, ops, int64(litLen)); err != nil {
				return payloadErr(err)
			}
		}
	}
	return nil
}

// --------------------------------------------------------------------- hash

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

// --------------------------------------------------------------------- list

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

// ---------------------------------------------------------------------- get

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

// --------------------------------------------------------------------- seed

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

func copyAtomic(src, dst string, mode uint32) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", ioFail(err)
	}
	defer in.Close()
	out, err := newAtomicFile(dst)
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
