// put: one payload (full content or delta) in on stdin, written atomically.

package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// maxHeaderLine bounds the payload's JSON header line.
const maxHeaderLine = 4096

type putHeader struct {
	V          int    `json:"v"`
	Kind       string `json:"kind"`
	Size       *int64 `json:"size"`
	SHA256     string `json:"sha256"`
	BaseSize   *int64 `json:"base_size"`
	BaseSHA256 string `json:"base_sha256"`
	Body       *int64 `json:"body"`
	// CRC32 (IEEE) of the new content: what put checks the file it wrote
	// against. The sha256 names the content (what the session remembers);
	// checking it would cost a full hash of every binary on every reload —
	// 10 ms for 6 MB where SHA instructions are missing — for no more than
	// a check of the decoding, which a CRC does in well under a millisecond.
	CRC32 *uint32 `json:"crc32"`
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
	if h.Size == nil || *h.Size < 0 || !isHex64(h.SHA256) || h.CRC32 == nil {
		return h, fail("bad-payload", "header needs size, crc32 and a lowercase hex sha256")
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

// cmdPut runs put and returns the exit code. On failure it prints the status
// first, then drains the rest of the announced body so that the sender never
// sees a broken pipe instead of the answer (never more: stdin may stay open
// after the payload).
func cmdPut(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a, err := parseArgs(argv, "mode", "max-size", "wait-exec", "probe")
	if err != nil {
		return finish("put", err, stdout, stderr)
	}
	if err := wantOperands(a, 1, "put DEST [-mode 0755] [-max-size BYTES] [-wait-exec DUR [-probe http:PORT|tcp:PORT]] < payload"); err != nil {
		return finish("put", err, stdout, stderr)
	}
	mode := uint32(0o755)
	if a.hasMode {
		mode = a.mode
	}
	br := bufio.NewReaderSize(stdin, ioChunk)
	var body *bufio.Reader
	err = put(filepath.Clean(a.pos[0]), mode, a.maxSize, a.waitExec, a.probe, br, &body, stdout)
	code := finish("put", err, stdout, stderr)
	if err != nil && body != nil {
		io.Copy(io.Discard, body)
	}
	return code
}

// put reads one payload from br and applies it; *body is set to the payload's
// body (limited to its announced length) as soon as the header is read.
func put(dest string, mode uint32, maxSize int64, waitExec time.Duration, probe *probeSpec, br *bufio.Reader, body **bufio.Reader, stdout io.Writer) error {
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
	out, err := newAtomicFile(dest, false, crc32.NewIEEE())
	if err != nil {
		return err
	}
	defer out.abort()
	var sink io.Writer = out
	var kept *bytes.Buffer
	if keepsContent(dest, h.Kind) {
		kept = bytes.NewBuffer(make([]byte, 0, *h.Size))
		sink = io.MultiWriter(out, kept)
	}
	w := &boundedWriter{w: sink, limit: *h.Size}

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
	if got := out.sum.(hash.Hash32).Sum32(); got != *h.CRC32 {
		return fail("hash-mismatch", "new content has crc32 %d, header says %d", got, *h.CRC32)
	}
	if err := out.commit(mode); err != nil {
		return err
	}
	var data []byte
	if kept != nil {
		data = kept.Bytes()
	}
	remember(dest, *h.Size, h.SHA256, data, h.Kind == "delta")
	status := map[string]interface{}{"ok": true, "kind": h.Kind, "bytes": w.n, "sha256": h.SHA256, "write_ms": time.Since(started).Milliseconds()}
	if waitExec > 0 {
		awaitServing(dest, waitExec, probe).report(status, probe != nil)
	}
	return writeJSON(stdout, status)
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

// openBase reads the file a delta applies to, in one go (a delta's many
// small copies would otherwise each be a read, slow on FUSE-backed
// overlays), and checks it is the delta's base. In a session, the content
// put wrote last is taken from memory while the file is still that one
// (or, when only its hash was kept, read without being hashed again).
func openBase(dest string, size int64, sum string) ([]byte, error) {
	data, known := recall(dest, size, sum)
	if data != nil {
		return data, nil
	}
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
	data = make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, ioFail(err)
	}
	if known {
		return data, nil
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
		return nil, fail("base-mismatch", "%s has sha256 %s, the delta's base is %s", dest, hex.EncodeToString(got[:]), sum)
	}
	return data, nil
}
