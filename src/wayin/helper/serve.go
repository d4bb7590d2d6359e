// serve: a long-lived session, many requests over one exec stream.

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// maxRequestLine bounds a serve request line (argv as JSON).
const maxRequestLine = 64 << 10

// serveRequest is one request of a session: the argv of a subcommand and
// the number of payload bytes that follow the line (its stdin).
type serveRequest struct {
	Args    []string `json:"args"`
	Payload *int64   `json:"payload"`
}

// serveable are the subcommands whose whole answer is one status line; get
// and list answer with a stream of their own and stay one-shot.
var serveable = map[string]bool{"put": true, "hash": true, "rm": true, "seed": true, "serving": true, "version": true}

// cmdServe answers requests until stdin ends:
//
//	{"args":["put","-mode","0755","--","/ko-app/app"],"payload":N}\n  N bytes
//
// Each request runs the subcommand with exactly its N payload bytes as
// stdin (what it leaves unread is skipped, so the stream stays in step
// whatever the subcommand does) and answers with exactly one line: the
// subcommand's status line. A request line that cannot be read ends the
// session (the stream is out of step), after a status line saying why.
// End of stdin ends it cleanly (exit 0).
func cmdServe(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(argv) != 0 {
		return finish("serve", fail("usage", "usage: helper serve (requests on stdin)"), stdout, stderr)
	}
	remembering = true
	br := bufio.NewReaderSize(stdin, ioChunk)
	for {
		line, err := readLine(br, maxRequestLine)
		if err == io.EOF && len(line) == 0 {
			return 0
		}
		if err != nil {
			return finish("serve", fail("usage", "bad request line: %v", err), stdout, stderr)
		}
		var req serveRequest
		if err := json.Unmarshal(line, &req); err != nil || req.Payload == nil || *req.Payload < 0 || len(req.Args) == 0 {
			return finish("serve", fail("usage", "bad request line %q: want {\"args\":[...],\"payload\":N}", clip(line)), stdout, stderr)
		}
		payload := arriving(br, *req.Payload)
		answer := serveOne(req.Args, payload, stderr)
		// Whatever the subcommand did not read is skipped.
		if _, err := io.Copy(io.Discard, payload); err != nil {
			return finish("serve", ioFail(err), stdout, stderr)
		}
		if *req.Payload > 0 {
			answer = withField(answer, "recv_us", payload.took().Microseconds())
		}
		if _, err := stdout.Write(answer); err != nil {
			return exitFail
		}
	}
}

// arrivalChunks bounds what a payload may hold in memory ahead of the
// subcommand reading it: arrivalChunks reads of up to ioChunk bytes.
const arrivalChunks = 16

// arrival is a request's payload, read from the session's stream as fast as
// it arrives (never past its length), whatever pace the subcommand reads
// it at — so that how long it took to arrive measures the link, not the
// decoding: gohot picks the next payload's compression by it.
type arrival struct {
	chunks chan []byte
	err    error // set before chunks is closed
	rest   []byte
	start  time.Time
	end    time.Time // when the last byte was read; set before chunks is closed
}

func arriving(r io.Reader, n int64) *arrival {
	a := &arrival{chunks: make(chan []byte, arrivalChunks), start: time.Now()}
	go func() {
		lr := io.LimitReader(r, n)
		for {
			buf := make([]byte, ioChunk)
			k, err := lr.Read(buf)
			if k > 0 {
				a.end = time.Now()
				a.chunks <- buf[:k]
			}
			if err != nil {
				if err != io.EOF {
					a.err = err
				} else if lr.(*io.LimitedReader).N > 0 {
					a.err = io.ErrUnexpectedEOF
				}
				close(a.chunks)
				return
			}
		}
	}()
	return a
}

func (a *arrival) Read(p []byte) (int, error) {
	for len(a.rest) == 0 {
		c, ok := <-a.chunks
		if !ok {
			if a.err != nil {
				return 0, a.err
			}
			return 0, io.EOF
		}
		a.rest = c
	}
	n := copy(p, a.rest)
	a.rest = a.rest[n:]
	return n, nil
}

// took is how long the payload took to arrive; call it once Read has
// returned the end.
func (a *arrival) took() time.Duration {
	if a.end.IsZero() {
		return 0
	}
	return a.end.Sub(a.start)
}

// withField adds "key":value to a one-line JSON object (newline included).
func withField(line []byte, key string, value int64) []byte {
	if !bytes.HasSuffix(line, []byte("}\n")) || bytes.HasSuffix(line, []byte("{}\n")) {
		return line
	}
	out := append([]byte(nil), line[:len(line)-2]...)
	out = append(out, `,"`+key+`":`+strconv.FormatInt(value, 10)+"}\n"...)
	return out
}

// serveOne runs one request and returns its status line (newline included).
func serveOne(args []string, payload io.Reader, stderr io.Writer) []byte {
	var out bytes.Buffer
	if !serveable[args[0]] {
		finish("serve", fail("usage", "%q is not available in a session (want put, hash, rm, seed or version)", args[0]), &out, stderr)
		return out.Bytes()
	}
	run(args, payload, &out, stderr)
	if n := bytes.Count(out.Bytes(), []byte{'\n'}); n != 1 || out.Bytes()[out.Len()-1] != '\n' {
		out.Reset()
		finish(args[0], fail("io", "the subcommand answered %d lines, not one", n), &out, stderr)
	}
	return out.Bytes()
}

// readLine reads one '\n'-terminated line of at most max bytes (without the
// newline). At EOF it returns what it has with io.EOF.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+1 {
			return nil, fail("usage", "request line longer than %d bytes", max)
		}
		switch err {
		case nil:
			return line[:len(line)-1], nil
		case bufio.ErrBufferFull:
			continue
		default:
			return line, err
		}
	}
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
