package main

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// slowTail gives everything but the last n bytes at once, the rest after
// pause: a payload whose end arrives late.
type slowTail struct {
	r     *bytes.Reader
	n     int
	pause time.Duration
	slept bool
}

func (s *slowTail) Read(p []byte) (int, error) {
	if left := s.r.Len(); left <= s.n && !s.slept {
		time.Sleep(s.pause)
		s.slept = true
	} else if left > s.n && len(p) > left-s.n {
		p = p[:left-s.n]
	}
	return s.r.Read(p)
}

// A session's put says how long its payload took to arrive: at least the
// pause before its last bytes (the link), and a payload-less request says
// nothing of the kind.
func TestServeReportsHowLongAPayloadTookToArrive(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app")
	var in bytes.Buffer
	in.Write(request(fullPayload(noise(50<<10, 7)), "put", "--", dest))
	in.Write(request(nil, "hash", "--", dest))
	pause := 60 * time.Millisecond
	r := runHelper(t, &slowTail{r: bytes.NewReader(in.Bytes()), n: 200, pause: pause}, "serve")
	got := answers(t, r.stdout)
	if len(got) != 2 || got[0]["ok"] != true {
		t.Fatalf("answers %v (stderr %q)", got, r.stderr)
	}
	// The hash request (last 200 bytes of the stream hold it and the put's
	// tail) follows the pause too; only the put has a payload.
	if us, ok := got[0]["recv_us"].(float64); !ok || time.Duration(us)*time.Microsecond < pause {
		t.Fatalf("recv_us %v, want at least %v", got[0]["recv_us"], pause)
	}
	if _, ok := got[1]["recv_us"]; ok {
		t.Fatalf("recv_us on a request without payload: %v", got[1])
	}
}

// The payload is read ahead of a slow reader, never past its length.
func TestArrivalStopsAtThePayloadsEnd(t *testing.T) {
	src := bytes.NewReader([]byte("0123456789rest"))
	a := arriving(src, 10)
	got, err := io.ReadAll(a)
	if err != nil || string(got) != "0123456789" {
		t.Fatalf("read %q, %v", got, err)
	}
	if rest, _ := io.ReadAll(src); string(rest) != "rest" {
		t.Fatalf("read past the payload: %q left", rest)
	}
	short := arriving(bytes.NewReader([]byte("abc")), 10)
	if _, err := io.ReadAll(short); err != io.ErrUnexpectedEOF {
		t.Fatalf("a cut payload: %v", err)
	}
}

func TestWithField(t *testing.T) {
	if got := string(withField([]byte("{\"ok\":true}\n"), "recv_us", 12)); got != "{\"ok\":true,\"recv_us\":12}\n" {
		t.Fatalf("%q", got)
	}
	for _, keep := range []string{"{}\n", "not json\n", "{\"a\":1}"} {
		if got := string(withField([]byte(keep), "k", 1)); got != keep {
			t.Fatalf("%q became %q", keep, got)
		}
	}
}
