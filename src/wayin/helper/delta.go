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
