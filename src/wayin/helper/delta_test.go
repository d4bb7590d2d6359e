package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// checkedBase is a base that fails the test on any read outside it.
type checkedBase struct {
	t    *testing.T
	data []byte
}

func (b checkedBase) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b.data)) || int64(len(p)) > int64(len(b.data))-off {
		b.t.Fatalf("read of %d bytes at %d, outside the %d-byte base", len(p), off, len(b.data))
	}
	return copy(p, b.data[off:]), nil
}

// decode runs applyDelta on ops against base for an output of size bytes.
func decode(t *testing.T, base, ops []byte, size int64) ([]byte, error) {
	var out bytes.Buffer
	w := &boundedWriter{w: &out, limit: size}
	err := applyDelta(bufio.NewReader(bytes.NewReader(ops)), checkedBase{t, base}, int64(len(base)), w)
	if int64(out.Len()) > size || w.n != int64(out.Len()) {
		t.Fatalf("wrote %d bytes (counted %d) for a size of %d", out.Len(), w.n, size)
	}
	if err == nil && w.n != size {
		t.Fatalf("succeeded with %d of %d bytes", w.n, size)
	}
	return out.Bytes(), err
}

// referenceDelta is a second, naive decoder of the same format (whole slices,
// no streaming) that the fuzz test compares applyDelta with.
func referenceDelta(base, ops []byte, size int) ([]byte, bool) {
	var out []byte
	cursor := 0
	for len(out) < size {
		seek, n := binary.Varint(ops)
		if n <= 0 {
			return nil, false
		}
		ops = ops[n:]
		add, n := binary.Uvarint(ops)
		if n <= 0 {
			return nil, false
		}
		ops = ops[n:]
		lit, n := binary.Uvarint(ops)
		if n <= 0 {
			return nil, false
		}
		ops = ops[n:]
		room := uint64(size - len(out))
		if add > room || lit > room-add || add+lit == 0 {
			return nil, false
		}
		if seek < -int64(cursor) || seek > int64(len(base)-cursor) {
			return nil, false
		}
		cursor += int(seek)
		if add > uint64(len(base)-cursor) {
			return nil, false
		}
		for end := cursor + int(add); cursor < end; {
			same, n := binary.Uvarint(ops)
			if n <= 0 {
				return nil, false
			}
			ops = ops[n:]
			diff, n := binary.Uvarint(ops)
			if n <= 0 {
				return nil, false
			}
			ops = ops[n:]
			left := uint64(end - cursor)
			if same > left || diff > left-same || same+diff == 0 || diff > uint64(len(ops)) {
				return nil, false
			}
			out = append(out, base[cursor:cursor+int(same)]...)
			cursor += int(same)
			for i := 0; i < int(diff); i++ {
				out = append(out, base[cursor+i]+ops[i])
			}
			cursor += int(diff)
			ops = ops[diff:]
		}
		if lit > uint64(len(ops)) {
			return nil, false
		}
		out = append(out, ops[:lit]...)
		ops = ops[lit:]
	}
	return out, true
}

func TestApplyDeltaRecords(t *testing.T) {
	base := []byte("0123456789")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ok := []struct {
		name string
		ops  []byte
		want string
	}{
		{"literal only", record(0, nil, []byte("hello")), "hello"},
		{"copy all", record(0, make([]byte, 10), nil), "0123456789"},
		{"add changes bytes", record(2, []byte{1, 1, 0}, nil), "344"},
		{"wrapping add", record(0, []byte{0xff}, nil), "/"},
		{"seek back and forth", cat(record(5, make([]byte, 2), nil), record(-7, make([]byte, 2), []byte("!"))), "5601!"},
		{"seek to the end", cat(record(10, nil, []byte("x"))), "x"},
		{"add then literal", record(8, make([]byte, 2), []byte("ab")), "89ab"},
		{"runs kept and changed", runs(2, 6, []uint64{2, 1, 0, 3}, []byte{1, 0, 0, 0xff}), "235566"},
		{"a run kept whole", runs(0, 10, []uint64{10, 0}, nil), "0123456789"},
	}
	for _, c := range ok {
		got, err := decode(t, base, c.ops, int64(len(c.want)))
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	bad := []struct {
		name string
		ops  []byte
		size int64
	}{
		{"no ops", nil, 1},
		{"empty record", record(0, nil, nil), 1},
		{"seek before the base", record(-1, nil, []byte("x")), 1},
		{"seek past the base", record(11, nil, []byte("x")), 1},
		{"most negative seek", record(math.MinInt64, make([]byte, 1), nil), 1},
		{"most positive seek", record(math.MaxInt64, make([]byte, 1), nil), 1},
		{"add past the base", record(5, make([]byte, 6), nil), 6},
		{"add past size", record(0, make([]byte, 3), nil), 2},
		{"literal past size", record(0, nil, []byte("abc")), 2},
		{"huge lengths", append(binary.AppendVarint(nil, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01), 1},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), 1},
		{"truncated add", record(0, make([]byte, 4), nil)[:5], 4},
		{"truncated literal", record(0, nil, []byte("abcd"))[:5], 4},
		{"run past its record", runs(0, 3, []uint64{2, 2}, []byte{0, 0}), 3},
		{"kept run past its record", runs(0, 3, []uint64{4, 0}, nil), 3},
		{"run covering nothing", runs(0, 3, []uint64{0, 0, 3, 0}, nil), 3},
		{"runs short of the add length", runs(0, 3, []uint64{2, 0}, nil), 3},
	}
	for _, c := range bad {
		_, err := decode(t, base, c.ops, c.size)
		var f *failure
		if !errors.As(err, &f) || f.code != "bad-payload" {
			t.Errorf("%s: got %v, want a bad-payload failure", c.name, err)
		}
	}
}

// runs encodes one record at seek whose add region of addLen bytes is the
// given (kept, changed) run lengths, the changed runs' differences taken
// in turn from diffs.
func runs(seek int64, addLen int, lengths []uint64, diffs []byte) []byte {
	b := binary.AppendVarint(nil, seek)
	b = binary.AppendUvarint(b, uint64(addLen))
	b = binary.AppendUvarint(b, 0)
	for i := 0; i+1 < len(lengths); i += 2 {
		b = binary.AppendUvarint(b, lengths[i])
		b = binary.AppendUvarint(b, lengths[i+1])
		n := int(lengths[i+1])
		if n > len(diffs) {
			n = len(diffs)
		}
		b = append(b, diffs[:n]...)
		diffs = diffs[n:]
	}
	return b
}

// FuzzApplyDelta: whatever the ops, applyDelta never panics, never writes
// more than size bytes, never reads outside the base, fails only with a
// bad-payload failure, and agrees with the reference decoder.
func FuzzApplyDelta(f *testing.F) {
	base := []byte("The quick brown fox jumps over the lazy dog.")
	f.Add(base, record(0, make([]byte, len(base)), nil), uint16(len(base)))
	f.Add(base, record(4, diff([]byte("QUICK"), base[4:9]), []byte(" red")), uint16(9))
	f.Add(base, append(record(40, make([]byte, 4), nil), record(-44, make([]byte, 3), []byte("!"))...), uint16(8))
	f.Add([]byte{}, record(0, nil, []byte("new file")), uint16(8))
	f.Add(base, runs(4, 9, []uint64{3, 2, 2, 2}, []byte{1, 2, 3, 4}), uint16(9))
	f.Add(base, record(-1, nil, []byte("x")), uint16(1))
	f.Add(base, record(math.MinInt64, make([]byte, 2), nil), uint16(2))
	f.Add(base, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x01, 'z'}, uint16(1))
	f.Fuzz(func(t *testing.T, base, ops []byte, size uint16) {
		got, err := decode(t, base, ops, int64(size))
		if err != nil {
			var fl *failure
			if !errors.As(err, &fl) || fl.code != "bad-payload" {
				t.Fatalf("failed with %v, want a bad-payload failure", err)
			}
		}
		want, ok := referenceDelta(base, ops, int(size))
		if ok != (err == nil) {
			t.Fatalf("applyDelta: %v; reference decoder ok: %v", err, ok)
		}
		if ok && !bytes.Equal(got, want) {
			t.Fatalf("applyDelta produced %q, the reference %q", got, want)
		}
	})
}
