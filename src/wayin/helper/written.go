// What a session wrote: the next delta's base without a read and a hash.

package main

import (
	"os"
	"syscall"
	"time"
)

// remembering is set by serve: a one-shot put has no next delta to serve.
var remembering bool

// Bounds on what a session remembers, whatever it is sent: the helper
// shares the app's memory limit, and a session may carry hundreds of
// megabytes of kodata and sync-rule files.
const (
	// maxRemembered is how many files a session describes (hash, inode,
	// size, mtime: about a hundred bytes each); the oldest is forgotten.
	maxRemembered = 4096
	// maxKeptContents is how many files a session keeps the content of:
	// only files that took a delta (the app's binary, whose next reload
	// is a delta again; kodata and sync rules always send full files),
	// the least recently written going first.
	maxKeptContents = 2
)

// writtenFile is what put last wrote to a destination, and how to tell that
// the file there is still it: a rename always brings a new inode, and any
// write changes the size or the modification time.
type writtenFile struct {
	sum   string
	ino   uint64
	size  int64
	mtime time.Time
	data  []byte // the content, for a file that takes deltas (else nil)
	delta bool   // the file took a delta in this session
	seq   uint64 // write order, for forgetting the oldest
}

var (
	lastWritten = map[string]*writtenFile{}
	writeSeq    uint64
)

// keepsContent tells put whether to keep what it writes to dest in memory:
// for a delta, or a full write to a file that took deltas before (a
// reload sent whole after a base mismatch).
func keepsContent(dest, kind string) bool {
	if !remembering {
		return false
	}
	w, ok := lastWritten[dest]
	return kind == "delta" || ok && w.delta
}

// remember records that dest now holds content with sha256 sum and size;
// data is the content itself when keepsContent said so (else nil).
func remember(dest string, size int64, sum string, data []byte, delta bool) {
	if !remembering {
		return
	}
	prev, had := lastWritten[dest]
	st, err := os.Stat(dest)
	if err != nil || st.Size() != size {
		delete(lastWritten, dest)
		return
	}
	writeSeq++
	w := &writtenFile{sum: sum, ino: inode(st), size: size, mtime: st.ModTime(), data: data, delta: delta || had && prev.delta, seq: writeSeq}
	lastWritten[dest] = w
	if data != nil {
		kept := 0
		for _, o := range lastWritten {
			if o.data != nil {
				kept++
			}
		}
		for ; kept > maxKeptContents; kept-- {
			oldest(func(o *writtenFile) bool { return o.data != nil }).data = nil
		}
	}
	for len(lastWritten) > maxRemembered {
		o := oldest(func(*writtenFile) bool { return true })
		for p, v := range lastWritten {
			if v == o {
				delete(lastWritten, p)
			}
		}
	}
}

// oldest is the least recently written remembered file that ok accepts.
func oldest(ok func(*writtenFile) bool) *writtenFile {
	var o *writtenFile
	for _, w := range lastWritten {
		if ok(w) && (o == nil || w.seq < o.seq) {
			o = w
		}
	}
	return o
}

// recall tells whether dest is still what put wrote, with the wanted size
// and sha256; if so, data is its content when it was kept (else nil: read
// it, but there is no need to hash it).
func recall(dest string, size int64, sum string) (data []byte, known bool) {
	w, ok := lastWritten[dest]
	if !ok || w.sum != sum || w.size != size {
		return nil, false
	}
	st, err := os.Stat(dest)
	if err != nil || !st.Mode().IsRegular() || inode(st) != w.ino || st.Size() != w.size || !st.ModTime().Equal(w.mtime) {
		delete(lastWritten, dest)
		return nil, false
	}
	return w.data, true
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}
