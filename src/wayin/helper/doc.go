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
//	put DEST [-mode 0755] [-max-size BYTES] [-wait-exec DUR [-probe http:PORT|tcp:PORT]]
//	    Reads a payload on stdin (format below), writes the new content to a
//	    temporary file in DEST's directory (.NAME.gohot-XXXX), checks its
//	    sha256, chmods and renames it over DEST: atomic, not durable (no
//	    fsync: see atomic.go). On any failure the temporary file is removed
//	    and DEST is untouched.
//	    Prints {"ok":true,"kind":"full|delta","bytes":N,"sha256":"..."}.
//	    A DELTA whose base is not DEST's current content fails with exit
//	    code 3 and {"ok":false,"error":"base-mismatch",...}: resend as FULL.
//	    With -wait-exec, put then waits (at most DUR) for a process started
//	    from the new file (the supervisor's restart): "pid", "restart_ms"; with
//	    -probe also until that process answers on 127.0.0.1:PORT inside the
//	    container: "answer_ms". A new process that exits first is reported as
//	    soon as seen: "exited" (e.g. "exit status 2"; "" once reaped) and
//	    "exit_ms" (serving.go).
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
//	rm PATH
//	    Removes one file (a sync rule's deletion) and fsyncs its directory;
//	    a missing file is fine. Prints {"ok":true,"removed":true|false}.
//	serving DEST -wait-exec DUR [-probe http:PORT|tcp:PORT]
//	    Waits, as put -wait-exec does after its rename, for a process running
//	    DEST and with -probe until it answers (or exits): the first start's
//	    answer, with no put. Prints {"ok":true,"pid":N,"restart_ms":R,"answer_ms":M}
//	    ("exited" and "exit_ms" as put's; no pid or answer_ms: not in time).
//	version
//	    Prints {"name":"gohot-helper","protocol":3,"go":...,"os":...,"arch":...}.
//	serve
//	    A session: many requests over one exec stream, so that a reload
//	    pays no exec setup. Each request is one line, then its payload:
//	        {"args":["put","--","/ko-app/app"],"payload":N}\n  N bytes
//	    and is answered with exactly one line, the status line the same
//	    one-shot subcommand prints (put, hash, rm, seed, serving and version; get
//	    and list stream their answers and stay one-shot). The N bytes are
//	    the subcommand's stdin; what it leaves unread is skipped. End of
//	    stdin ends the session (exit 0); an unreadable request line ends it
//	    with a usage status line (exit 2). A reply to a request with a
//	    payload also says how long the payload took to arrive, "recv_us" (it
//	    is read ahead of the subcommand, at most 1 MiB): gohot measures the
//	    link by it. Within a session, put remembers
//	    the hash of what it wrote to each DEST (the last 4096 of them) and
//	    trusts it while the file is still that one (same inode, size and
//	    mtime); it keeps the content itself only of the two files written
//	    last that took a delta (the app's binary), to apply the next delta
//	    without reading the base. A session carrying hundreds of megabytes
//	    of kodata thus holds no more memory than one carrying a binary.
//
// Put payload: one JSON header line (at most 4096 bytes), then exactly
// "body" bytes holding one gzip member and nothing after it:
//
//	{"v":3,"kind":"full","size":N,"sha256":HEX,"crc32":C,"body":B}\n  gzip(new content)
//	{"v":3,"kind":"delta","size":N,"sha256":HEX,"crc32":C,"base_size":M,"base_sha256":HEX,"body":B}\n  gzip(delta ops)
//
// sha256 names the new content (what a session remembers it holds); crc32
// (IEEE) is what the written file is checked against: a check of the
// decoding, at a fraction of a full hash's cost on every reload.
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
//	uvarint add_len
//	uvarint lit_len
//	runs              covering exactly add_len bytes of the base from the cursor, each
//	    uvarint same      bytes copied from the base as they are; cursor += same
//	    uvarint diff
//	    diff bytes d      out = base[cursor+i] + d[i] (mod 256); cursor += diff
//	lit_len bytes     copied to the output as they are
//
// A record must produce at least one byte, and a run cover at least one.
// (Most of a block that moved is unchanged: the runs keep the records of a
// reload at tens of kilobytes instead of the binary's size, which is what
// gzip has to compress and the helper to inflate.) Every length and cursor position
// is bounds-checked against "size" and "base_size", so a corrupt or hostile
// payload fails cleanly; memory use does not depend on the payload.
//
// Exit codes: 0 ok, 1 failure, 2 usage, 3 base-mismatch (put only).
//
// Personalities: run as "tar" or "rm" (dev images link both names to the
// helper in /var/run/gohot/bin, first on PATH), it answers the file syncs of
// Skaffold (tar xmf - -C / --no-same-owner; rm -rf -- PATHS) and Tilt
// (tar -C / -x -f -; rm -rf PATHS) on bases with neither: tar stages every
// member beside its destination and renames each into place only once the
// whole archive has been read and checked, so a hostile or broken archive
// writes nothing (exit 2, as GNU tar); members under /var/run/gohot/discard
// are dropped. Anything but extraction is a usage error naming what works.
//
// Source layout (one concern a file): main.go dispatches and reports status
// and exit codes; args.go parses flags; atomic.go is the temp+rename writer
// every write goes through; put.go reads a payload and delta.go decodes its
// delta records; hash.go, list.go, get.go, seed.go and rm.go hold the other
// subcommands; serving.go watches the new process after a put; serve.go
// runs them as a session (written.go: what it remembers); mode.go converts permission bits; personality.go picks tar or
// rm by the name the helper runs under, and holds rm; tar.go parses tar's
// command line and extracts.
// The *_test.go files are not embedded in gohot: run them with go test.
package main
