// The delta decoder (format in doc.go); the encoder lives in gohot, in Rust.

package main

import (
	"bufio"
	"encoding/binary"
	"io"
)

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
		// 0 <= cursor <= baseSize, so neither bound overflows (-seek would,
		// for the most negative seek).
		if seek < -cursor || seek > baseSize-cursor {
			return fail("bad-payload", "delta seeks outside the base")
		}
		cursor += seek
		if addLen > uint64(baseSize-cursor) {
			return fail("bad-payload", "delta reads past the end of the base")
		}
		for end := cursor + int64(addLen); cursor < end; {
			same, err := binary.ReadUvarint(ops)
			if err != nil {
				return payloadErr(err)
			}
			diff, err := binary.ReadUvarint(ops)
			if err != nil {
				return payloadErr(err)
			}
			left := uint64(end - cursor)
			if same > left || diff > left-same {
				return fail("bad-payload", "delta run covers more than its record's add length")
			}
			if same == 0 && diff == 0 {
				return fail("bad-payload", "delta run covers nothing")
			}
			if err := copyBase(w, base, cursor, int64(same), obuf); err != nil {
				return err
			}
			cursor += int64(same)
			for left := int64(diff); left > 0; {
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
		}
		if litLen > 0 {
			if _, err := io.CopyN(w, ops, int64(litLen)); err != nil {
				return payloadErr(err)
			}
		}
	}
	return nil
}

// copyBase writes n bytes of the base from off unchanged (a run the delta
// leaves as it was), through buf.
func copyBase(w *boundedWriter, base io.ReaderAt, off, n int64, buf []byte) error {
	for n > 0 {
		c := int64(len(buf))
		if n < c {
			c = n
		}
		if _, err := base.ReadAt(buf[:c], off); err != nil {
			return ioFail(err)
		}
		if _, err := w.Write(buf[:c]); err != nil {
			return err
		}
		off += c
		n -= c
	}
	return nil
}
