// What a session wrote: the next delta's base without a read and a hash.

package main

import (
	"os"
	"syscall"
	"time"
)

// remembering is set by serve: a one-shot put has no next delta to serve.
var remembering bool

// writtenFile is the content put last wrote to a destination, and how to
// tell that the file there is still it: a rename always brings a new inode,
// and any write changes the size or the modification time.
type writtenFile struct {
	data  []byte
	sum   string
	ino   uint64
	size  int64
	mtime time.Time
}

var lastWritten = map[string]writtenFile{}

// remember records data (with sha256 sum) as dest's content, if dest is it.
func remember(dest string, data []byte, sum string) {
	st, err := os.Stat(dest)
	if err != nil || st.Size() != int64(len(data)) {
		delete(lastWritten, dest)
		return
	}
	lastWritten[dest] = writtenFile{data: data, sum: sum, ino: inode(st), size: st.Size(), mtime: st.ModTime()}
}

// recall returns dest's content if it is still what put wrote and has the
// wanted size and sha256.
func recall(dest string, size int64, sum string) ([]byte, bool) {
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
