package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// PostgresSuperuser is the superuser role created by initdb in an
	// embedded cluster; the DSN from [Postgres.DSN] logs in as it.
	PostgresSuperuser = "biosync"

	// PostgresLocationFile is the pointer file written into a requested data
	// directory when the cluster had to be placed elsewhere (root with a data
	// directory the postgres OS user cannot reach). It holds the absolute path
	// of the actual PGDATA directory.
	PostgresLocationFile = "PGDATA_LOCATION"

	// PostgresBinEnv names the environment variable that the configuration
	// reads to override where the PostgreSQL server binaries (initdb,
	// postgres) are looked up; its value reaches StartPostgres as binDir.
	PostgresBinEnv = "BIOSYNC_PG_BIN"

	// ephemeralPrefix names the temporary directories of clusters started
	// with an empty data dir; stale ones (their owner process is gone) are
	// swept on the next start.
	ephemeralPrefix = "biosync-pg-tmp-"
	// relocatedPrefix names the postgres-owned directories that hold the
	// cluster of a data dir the postgres OS user cannot reach.
	relocatedPrefix = "biosync-pg-"
)

// Postgres is a private PostgreSQL cluster run as a child process from the
// locally installed server binaries, listening on a free 127.0.0.1 port. It is
// the read-model store of the single binary's embedded default and the
// throwaway database server of tests. Create it with [StartPostgres].
type Postgres struct {
	base      string // directory holding pgdata, the log and (ephemeral) the lock
	pgdata    string
	logPath   string
	port      int
	ephemeral bool
	lock      *dirLock // ephemeral only: marks the temp dir as in use
	proc      *childProc

	closeOnce sync.Once
	closeErr  error
}

// pgIdentity is the OS identity the server processes run as: nil when they
// run as the current (non-root) user.
type pgIdentity struct {
	cred *syscall.Credential
	home string
	uid  int
	gids map[uint32]bool
}

// StartPostgres starts a PostgreSQL cluster and waits until it accepts
// connections (a real pgx connection, not an open port).
//
// With a non-empty dataDir the cluster is persistent: it lives in
// <dataDir>/pgdata (initdb'd on first use, reused afterwards), runs with
// fsync=on, and logs to <dataDir>/postgres.log. With dataDir "" it is a
// throwaway cluster in a fresh temporary directory, tuned for speed
// (fsync=off), and removed by Close; directories left by killed processes are
// swept on the next start.
//
// The cluster trusts connections on its unix socket (inside the data
// directory) and on 127.0.0.1, with superuser [PostgresSuperuser]. The
// binaries are found in binDir (the configured BIOSYNC_PG_BIN) when it is
// not empty, then on PATH, then in the newest
// /usr/lib/postgresql/<version>/bin.
//
// When the process runs as root, initdb and postgres run as the "postgres" OS
// user (PostgreSQL refuses root). If that user cannot traverse dataDir, the
// cluster is placed in <os.TempDir()>/biosync-pg-<hash of dataDir>, stable
// across restarts, and [PostgresLocationFile] in dataDir points to it. A
// data dir without that file is new (or was deleted to start over), so a
// cluster found at the hashed place is removed first.
//
// The server gets SIGKILL if this process dies (Pdeathsig), so it never
// outlives BioSync; a stale postmaster.pid left that way is cleared on the
// next start. Call Close for a clean shutdown.
func StartPostgres(ctx context.Context, dataDir, binDir string) (*Postgres, error) {
	bin, err := findPostgresBin(binDir)
	if err != nil {
		return nil, err
	}
	id, err := serverIdentity()
	if err != nil {
		return nil, err
	}

	p := &Postgres{}
	if err := p.layout(dataDir, id); err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			p.cleanupFailedStart()
		}
	}()

	logFile, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: open log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	if _, err := os.Stat(filepath.Join(p.pgdata, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := p.initdb(ctx, bin, id, logFile); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	if err := clearStalePostmasterPid(p.pgdata); err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}

	// A free port found by listening can be taken by someone else before
	// postgres binds it: retry a few times on "address in use".
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("embedded postgres: find free port: %w", err)
		}
		logOffset := fileSize(p.logPath)
		if lastErr = p.start(ctx, bin, id, port, logFile); lastErr == nil {
			ok = true
			return p, nil
		}
		if !strings.Contains(readFrom(p.logPath, logOffset), "could not bind") {
			break
		}
	}
	return nil, lastErr
}

// DSN returns a pgx/libpq URL for the superuser on the default "postgres"
// database: postgres://biosync@127.0.0.1:<port>/postgres?sslmode=disable.
func (p *Postgres) DSN() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", PostgresSuperuser, p.port)
}

// Port returns the TCP port the server listens on (127.0.0.1).
func (p *Postgres) Port() int { return p.port }

// DataDir returns the cluster's actual PGDATA directory (which differs from
// the requested data dir, see [StartPostgres]); useful for diagnostics.
func (p *Postgres) DataDir() string { return p.pgdata }

// Close shuts the server down (fast shutdown: SIGINT, which rolls back open
// transactions and disconnects clients; then SIGQUIT and SIGKILL if it does
// not stop in time) and waits for it. A throwaway cluster's directory is
// removed. It is safe to call more than once.
func (p *Postgres) Close() error {
	p.closeOnce.Do(func() {
		p.closeErr = p.proc.stop(30 * time.Second)
		if p.ephemeral {
			if err := os.RemoveAll(p.base); err != nil && p.closeErr == nil {
				p.closeErr = err
			}
			_ = p.lock.unlock()
		}
	})
	return p.closeErr
}

// layout decides where the cluster lives and prepares the directories so the
// server's OS user can use them.
func (p *Postgres) layout(dataDir string, id *pgIdentity) error {
	tmpRoot := os.TempDir()
	if id != nil && !id.canTraverse(tmpRoot) {
		tmpRoot = "/tmp"
	}

	switch {
	case dataDir == "":
		p.ephemeral = true
		sweepStaleEphemeral(tmpRoot)
		base, err := os.MkdirTemp(tmpRoot, ephemeralPrefix)
		if err != nil {
			return err
		}
		p.base = base
		if p.lock, err = lockFile(filepath.Join(base, "LOCK")); err != nil {
			return err
		}
		if id != nil {
			if err := id.own(base); err != nil {
				return err
			}
		}

	default:
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return fmt.Errorf("data dir %q: %w", dataDir, err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		p.base = abs
		if id != nil && !id.canTraverse(abs) {
			_, statErr := os.Stat(filepath.Join(abs, PostgresLocationFile))
			base, err := relocatedBase(abs, tmpRoot)
			if err != nil {
				return err
			}
			if errors.Is(statErr, os.ErrNotExist) {
				// A data dir without its pointer file is new, or was deleted
				// to start over: a cluster at the hashed place belongs to
				// its predecessor. Reused, it would pair that database
				// (checkpoints, keys) with a new, empty event log.
				if err := os.RemoveAll(base); err != nil {
					return fmt.Errorf("remove the cluster of a deleted data dir at %s: %w", base, err)
				}
			}
			if err := prepareRelocatedBase(base, id); err != nil {
				return err
			}
			p.base = base
			note := []byte(filepath.Join(base, "pgdata") + "\n")
			if err := writeFileAtomic(filepath.Join(abs, PostgresLocationFile), note); err != nil {
				return fmt.Errorf("write %s: %w", PostgresLocationFile, err)
			}
		}
	}

	p.pgdata = filepath.Join(p.base, "pgdata")
	p.logPath = filepath.Join(p.base, "postgres.log")
	if err := os.Mkdir(p.pgdata, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if id != nil {
		if err := id.own(p.pgdata); err != nil {
			return err
		}
	}
	return nil
}

// relocatedBase returns the postgres-owned directory for a data dir the
// postgres user cannot reach: the one named by an existing pointer file, or
// <tmpRoot>/biosync-pg-<hash of the absolute path>.
func relocatedBase(abs, tmpRoot string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(abs, PostgresLocationFile)); err == nil {
		pgdata := strings.TrimSpace(string(b))
		base := filepath.Dir(pgdata)
		if filepath.IsAbs(pgdata) && filepath.Base(pgdata) == "pgdata" && strings.HasPrefix(filepath.Base(base), relocatedPrefix) {
			if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); err == nil {
				return base, nil
			}
		}
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(tmpRoot, relocatedPrefix+hex.EncodeToString(sum[:8])), nil
}

// prepareRelocatedBase creates base (0700, owned by the server user) or checks
// that an existing one is a real directory owned by that user or root, so a
// planted symlink in a shared temp dir cannot redirect the cluster.
func prepareRelocatedBase(base string, id *pgIdentity) error {
	if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(base)
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st == nil || (int(st.Uid) != id.uid && st.Uid != 0) {
		return fmt.Errorf("%s exists but is not a directory owned by root or the postgres user; remove it", base)
	}
	return id.own(base)
}

// initdb creates the cluster in p.pgdata.
func (p *Postgres) initdb(ctx context.Context, bin string, id *pgIdentity, logFile *os.File) error {
	args := []string{
		"-D", p.pgdata,
		"-U", PostgresSuperuser,
		"--auth-local=trust", "--auth-host=trust",
		"-E", "UTF8", "--locale=C",
	}
	if p.ephemeral {
		args = append(args, "--no-sync")
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(bin, "initdb"), args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	id.apply(cmd, p.base)
	err := runChild(ctx, cmd)
	_, _ = logFile.Write(out.Bytes())
	if err != nil {
		return fmt.Errorf("embedded postgres: initdb %s: %w\n%s", p.pgdata, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// start runs postgres on port and waits until a pgx connection succeeds.
func (p *Postgres) start(ctx context.Context, bin string, id *pgIdentity, port int, logFile *os.File) error {
	sockDir := p.pgdata
	if len(sockDir)+len("/.s.PGSQL.65535") >= 100 { // sun_path is ~107 bytes
		sockDir = "" // TCP only; clients use 127.0.0.1 anyway
	}
	args := []string{
		"-D", p.pgdata,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + sockDir,
	}
	if p.ephemeral {
		// Test data: speed over durability.
		args = append(args,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=200",
		)
	} else {
		args = append(args, "-c", "fsync=on")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	id.apply(cmd, p.base)
	proc, err := startChild(cmd)
	if err != nil {
		return fmt.Errorf("embedded postgres: start %s: %w", cmd.Path, err)
	}
	p.port = port

	deadline := 2 * time.Minute
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	waitCtx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-proc.done:
			return fmt.Errorf("embedded postgres: server exited during startup (%v); log %s:\n%s", proc.err, p.logPath, tail(p.logPath, 20))
		default:
		}
		connCtx, connCancel := context.WithTimeout(waitCtx, 2*time.Second)
		conn, err := pgx.Connect(connCtx, p.DSN())
		if err == nil {
			var one int
			err = conn.QueryRow(connCtx, "select 1").Scan(&one)
			conn.Close(context.Background())
		}
		connCancel()
		if err == nil {
			p.proc = proc
			return nil
		}
		lastErr = err
		select {
		case <-waitCtx.Done():
			_ = proc.stop(10 * time.Second)
			return fmt.Errorf("embedded postgres: not ready: %v (last connect error: %v); log %s:\n%s", waitCtx.Err(), lastErr, p.logPath, tail(p.logPath, 20))
		case <-proc.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cleanupFailedStart removes what a failed StartPostgres created for a
// throwaway cluster.
func (p *Postgres) cleanupFailedStart() {
	if p.ephemeral && p.base != "" {
		_ = os.RemoveAll(p.base)
		_ = p.lock.unlock()
	}
}

// serverIdentity returns nil when not root, else the "postgres" OS user.
func serverIdentity() (*pgIdentity, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: running as root, PostgreSQL must run as the \"postgres\" OS user, which was not found (%v): install PostgreSQL's server package or run BioSync as a non-root user", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	id := &pgIdentity{
		uid:  uid,
		home: u.HomeDir,
		gids: map[uint32]bool{uint32(gid): true},
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
				id.gids[uint32(n)] = true
			}
		}
	}
	id.cred = cred
	return id, nil
}

// apply makes cmd run as the identity (when set), in dir, with a clean
// environment for the PostgreSQL tools.
func (id *pgIdentity) apply(cmd *exec.Cmd, dir string) {
	env := []string{"LC_ALL=C", "LANG=C"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || (id != nil && k == "HOME") {
			continue
		}
		env = append(env, kv)
	}
	if id != nil {
		if id.home != "" {
			env = append(env, "HOME="+id.home)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: id.cred}
	}
	cmd.Env = env
	cmd.Dir = dir // a cwd the server user can enter (not /root)
}

// own hands path to the server user with mode 0700.
func (id *pgIdentity) own(path string) error {
	if id == nil {
		return nil
	}
	if err := os.Lchown(path, id.uid, int(id.cred.Gid)); err != nil {
		return err
	}
	return os.Chmod(path, 0o700)
}

// canTraverse reports whether the server user may enter path and every
// directory above it (search permission), judged from the mode bits.
func (id *pgIdentity) canTraverse(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		mode := fi.Mode().Perm()
		var allowed bool
		switch {
		case int(st.Uid) == id.uid:
			allowed = mode&0o100 != 0
		case id.gids[st.Gid]:
			allowed = mode&0o010 != 0
		default:
			allowed = mode&0o001 != 0
		}
		if !allowed {
			return false
		}
		if dir == filepath.Dir(dir) {
			return true
		}
	}
}

// findPostgresBin returns the directory holding initdb and postgres:
// override (the configured BIOSYNC_PG_BIN) when set, else the directory of
// initdb on PATH, else the newest /usr/lib/postgresql/<version>/bin.
func findPostgresBin(override string) (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if dir := override; dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("embedded postgres: %s=%s does not contain initdb and postgres", PostgresBinEnv, dir)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve symlinks such as /usr/local/bin/initdb -> .../15/bin/initdb,
		// so initdb and postgres come from one installation.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(dirs[j])), filepath.Base(filepath.Dir(dirs[i])))
	})
	dirs = append(dirs, "/usr/local/pgsql/bin")
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("embedded postgres: PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin: install PostgreSQL (Debian: apt-get install postgresql) or set %s to the directory holding them", PostgresBinEnv)
}

// versionLess compares dotted numeric versions ("9.6" < "15").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// clearStalePostmasterPid removes postmaster.pid if the process it names is
// gone (or is not a PostgreSQL server, e.g. a reused pid after a reboot), and
// fails if a live server is still using the cluster.
func clearStalePostmasterPid(pgdata string) error {
	path := filepath.Join(pgdata, "postmaster.pid")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 && isPostgresProcess(pid) {
		return fmt.Errorf("a PostgreSQL server (pid %d) is already running on %s; stop it first", pid, pgdata)
	}
	return os.Remove(path)
}

// isPostgresProcess reports whether pid is alive and runs a PostgreSQL
// server binary.
func isPostgresProcess(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(comm), "\x00")
	name := filepath.Base(argv0)
	return strings.HasPrefix(name, "postgres") || strings.HasPrefix(name, "postmaster")
}

// sweepStaleEphemeral removes throwaway cluster directories whose owner
// process died without Close (e.g. a test binary that exited or was killed):
// their LOCK is no longer held. Any orphaned server in them is killed first.
func sweepStaleEphemeral(tmpRoot string) {
	dirs, _ := filepath.Glob(filepath.Join(tmpRoot, ephemeralPrefix+"*"))
	for _, dir := range dirs {
		lockPath := filepath.Join(dir, "LOCK")
		if _, err := os.Stat(lockPath); err != nil {
			// Possibly being created right now; only sweep old ones.
			if fi, err := os.Stat(dir); err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
				continue
			}
		} else if isLocked(lockPath) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "pgdata", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 && isPostgresProcess(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// freePort returns a currently unused TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childProc is a child process whose Wait runs on a dedicated, locked OS
// thread (see startChild).
type childProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startChild starts cmd with Pdeathsig=SIGKILL so it dies with this process.
//
// Linux delivers the parent-death signal when the OS *thread* that forked the
// child exits, not the process, and the Go runtime may retire idle threads.
// So the child is started from a goroutine locked to its thread, which then
// stays blocked in Wait for the child's whole life. The goroutine never
// unlocks, so the runtime ends that thread only once the child has exited.
func startChild(cmd *exec.Cmd) (*childProc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	c := &childProc{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// runChild runs cmd to completion (as startChild), killing it if ctx ends.
func runChild(ctx context.Context, cmd *exec.Cmd) error {
	c, err := startChild(cmd)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-c.done
		return ctx.Err()
	}
}

// stop asks a PostgreSQL server for a fast shutdown (SIGINT), escalating to
// an immediate shutdown (SIGQUIT) and then SIGKILL, and waits for it.
func (c *childProc) stop(grace time.Duration) error {
	if c == nil {
		return nil
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, grace}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, time.Minute}} {
		_ = c.cmd.Process.Signal(step.sig)
		select {
		case <-c.done:
			if step.sig == syscall.SIGINT {
				return c.err
			}
			return fmt.Errorf("postgres did not stop on SIGINT within %v; sent %v", grace, step.sig)
		case <-time.After(step.wait):
		}
	}
	return errors.New("postgres did not exit after SIGKILL")
}

// fileSize returns the size of path, 0 if unknown.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns path's content from offset on.
func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// tail returns the last n lines of path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
