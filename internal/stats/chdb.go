package stats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// CHDBVersion is the chDB release hack/deps/chdb.sh fetches (npm
// @chdb/lib-linux-x64-gnu, ClickHouse 26.7) into
// .cache/chdb/<CHDBVersion>/libchdb.so.
const CHDBVersion = "26.7.3-stable.1"

// ErrNoCHDB: the chDB library is not where it was looked for.
var ErrNoCHDB = errors.New("stats: libchdb.so not found: run `make deps` (hack/deps/chdb.sh) or set CHDB_LIB_PATH")

// The embedded ClickHouse (chDB) is one session per process: libchdb keeps
// a single global context (the data directory, the databases, the caches),
// and opening a second connection replaces the first. So the process holds
// exactly one, opened lazily by the first store that needs it and shared by
// every store afterwards (in `make run` the listens service and the
// stats-writer function run in one process and read and write the same
// tables). Stores are separated by database, not by session.
//
// The library is bound with purego (no cgo), like
// github.com/chdb-io/chdb-go, through the same C API (chdb_connect,
// chdb_query, chdb_result_*). chdb-go v1.11.0 itself is not used: its
// package init dlopens the library and panics when it is absent — which
// would crash every binary and test importing this package on a machine
// (or a Knative image) without the 566 MB library — and it lets libchdb
// install its own SIGSEGV/SIGBUS/SIGURG handlers over the Go runtime's.
// Here the library is opened on first use, a missing one is an error, and
// the Go runtime's signal handlers are put back after libchdb is set up.
var embedded struct {
	mu  sync.Mutex
	eng *chdbEngine
}

// chdbEngine is the process's chDB session. Queries run one at a time:
// libchdb's connection is not safe for concurrent queries, and ClickHouse
// parallelises each query over the cores itself.
type chdbEngine struct {
	lib, dir string

	mu   sync.Mutex
	conn *chdbConnection

	query      func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	buffer     func(res unsafe.Pointer) *byte
	length     func(res unsafe.Pointer) uintptr
	errMessage func(res unsafe.Pointer) *byte
	destroy    func(res unsafe.Pointer)
	close      func(conn *chdbConnection)
}

// chdbConnection is what chdb_connect returns a pointer to: the handle
// chdb_query takes.
type chdbConnection struct{ handle unsafe.Pointer }

// CHDBLibPath is where the library is looked for when CHDB_LIB_PATH is not
// set: .cache/chdb/<CHDBVersion>/libchdb.so in the repository holding the
// working directory (or one of its parents: tests run in a package's
// directory).
func CHDBLibPath() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	rel := filepath.Join(".cache", "chdb", CHDBVersion, "libchdb.so")
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return rel
		}
		dir = parent
	}
}

// openEmbedded returns the process's chDB session, opening it on first
// use with the library at lib and the data in dir. Every later call must
// name the same directory: a process has one session.
func openEmbedded(lib, dir string) (*chdbEngine, error) {
	embedded.mu.Lock()
	defer embedded.mu.Unlock()
	if e := embedded.eng; e != nil {
		if filepath.Clean(dir) != filepath.Clean(e.dir) {
			return nil, fmt.Errorf("stats: chDB is already open on %s in this process (one session per process), not %s", e.dir, dir)
		}
		return e, nil
	}
	if _, err := os.Stat(lib); err != nil {
		return nil, fmt.Errorf("%w (looked at %s)", ErrNoCHDB, lib)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stats: chDB data directory: %w", err)
	}
	e, err := loadCHDB(lib, dir)
	if err != nil {
		return nil, err
	}
	embedded.eng = e
	return e, nil
}

func loadCHDB(lib, dir string) (e *chdbEngine, err error) {
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("stats: load %s: %w", lib, err)
	}
	// RegisterLibFunc panics on a missing symbol (another library, or an
	// older chDB): report it as an error.
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("stats: %s is not a usable chDB %s: %v", lib, CHDBVersion, r)
		}
	}()
	e = &chdbEngine{lib: lib, dir: dir}
	var connect func(argc int, argv unsafe.Pointer) *chdbConnection
	var disableSignals func(enabled int32)
	purego.RegisterLibFunc(&connect, h, "chdb_connect")
	purego.RegisterLibFunc(&disableSignals, h, "chdb_set_signal_handlers_enabled")
	purego.RegisterLibFunc(&e.query, h, "chdb_query")
	purego.RegisterLibFunc(&e.buffer, h, "chdb_result_buffer")
	purego.RegisterLibFunc(&e.length, h, "chdb_result_length")
	purego.RegisterLibFunc(&e.errMessage, h, "chdb_result_error")
	purego.RegisterLibFunc(&e.destroy, h, "chdb_destroy_query_result")
	purego.RegisterLibFunc(&e.close, h, "chdb_close_conn")

	// clickhouse-local's command line: the data directory; no query
	// profiler (its timer signals would land on threads Go does not know);
	// statements as large as a batch's rows (MaxQuerySize).
	args := []string{"clickhouse", "--path=" + dir,
		"--query_profiler_real_time_period_ns=0", "--query_profiler_cpu_time_period_ns=0",
		"--max_query_size=" + strconv.Itoa(MaxQuerySize)}
	argv := make([]*byte, len(args)+1)
	for i, a := range args {
		b := append([]byte(a), 0)
		argv[i] = &b[0]
	}
	var conn *chdbConnection
	func() {
		// libchdb would install ClickHouse's handlers for SIGSEGV, SIGBUS,
		// SIGFPE, SIGILL, SIGABRT… over the Go runtime's (which needs
		// SIGSEGV for nil dereferences and SIGURG for preemption). Turning
		// them off resets those signals to their defaults as a side
		// effect, so every handler is saved first and restored after.
		defer keepSignalHandlers()()
		disableSignals(0)
		conn = connect(len(args), unsafe.Pointer(&argv[0]))
	}()
	runtime.KeepAlive(argv)
	if conn == nil || conn.handle == nil {
		return nil, fmt.Errorf("stats: chDB could not open %s", dir)
	}
	e.conn = conn
	return e, nil
}

// exec runs one statement and returns its output in format. libchdb has
// no cancellation: ctx is checked before the statement runs only.
func (e *chdbEngine) exec(ctx context.Context, sql, format string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil, errors.New("chdb: session closed")
	}
	res := e.query(e.conn.handle, sql, format)
	if res == nil {
		return nil, errors.New("chdb: no result")
	}
	defer e.destroy(res)
	if msg := cString(e.errMessage(res)); msg != "" {
		return nil, errors.New(msg)
	}
	n := int(e.length(res))
	buf := e.buffer(res)
	if n == 0 || buf == nil {
		return nil, nil
	}
	// The C buffer is copied before the result is freed.
	return append([]byte(nil), unsafe.Slice(buf, n)...), nil
}

// cString copies the NUL-terminated C string at p.
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// keepSignalHandlers saves the process's handlers of the catchable
// signals and returns the function that puts them back.
func keepSignalHandlers() func() {
	libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW)
	if err != nil {
		return func() {}
	}
	var sigaction func(sig int32, act, old unsafe.Pointer) int32
	purego.RegisterLibFunc(&sigaction, libc, "sigaction")
	// struct sigaction is 152 bytes with glibc on 64-bit Linux; keep room.
	type saved [256]byte
	var old [65]saved
	for sig := 1; sig < len(old); sig++ {
		if sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
			continue
		}
		sigaction(int32(sig), nil, unsafe.Pointer(&old[sig][0]))
	}
	return func() {
		for sig := 1; sig < len(old); sig++ {
			if sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
				continue
			}
			sigaction(int32(sig), unsafe.Pointer(&old[sig][0]), nil)
		}
	}
}

// CloseEmbedded closes the process's chDB session, if open. A process
// that ends through libc's exit (the race detector's does, a plain Go
// binary does not) must call it first: libchdb's static destructors
// crash on a session still open.
func CloseEmbedded() {
	embedded.mu.Lock()
	defer embedded.mu.Unlock()
	e := embedded.eng
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.close(e.conn)
	e.conn = nil
	embedded.eng = nil
}
