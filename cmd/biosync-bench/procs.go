package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process (the server under test or the baseline server).
type proc struct {
	name string
	env  map[string]string // the variables this benchmark set for it
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logs *tailBuffer
}

// startProc starts bin with args and env and waits until a line of its
// standard output satisfies ready (nil: at once; readiness is then the
// caller's to check). The child gets SIGKILL if this process
// dies, so an interrupted benchmark leaves no server behind.
func startProc(ctx context.Context, name, bin string, args []string, env map[string]string, ready func(string) bool, timeout time.Duration) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv(env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &proc{name: name, env: env, cmd: cmd, done: make(chan struct{}), logs: &tailBuffer{max: 64 << 10}}
	cmd.Stderr = p.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	readyc := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			if !signalled && ready != nil && ready(line) {
				signalled = true
				close(readyc)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if ready == nil {
		return p, nil
	}
	select {
	case <-readyc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited during start-up (%v); its output:\n%s", name, p.err, p.logs.String())
	case <-time.After(timeout):
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("%s did not start within %s; its output:\n%s", name, timeout, p.logs.String())
	case <-ctx.Done():
		p.stop(5 * time.Second)
		return nil, ctx.Err()
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// stop asks the process to shut down (SIGTERM) and kills it after grace.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %s and was killed", p.name, grace)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write implements io.Writer.
func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// moduleRoot finds the BioSync module the benchmark was started in (go run
// ./cmd/biosync-bench runs from the repository).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the BioSync module: run the benchmark from the repository (make bench), or pass --server-bin")
	}
	root := filepath.Dir(gomod)
	if _, err := os.Stat(filepath.Join(root, "cmd", "biosync")); err != nil {
		return "", fmt.Errorf("%s has no cmd/biosync: run the benchmark from the BioSync repository, or pass --server-bin", root)
	}
	return root, nil
}

// profileEnv is the variable the profiling overlay reads: the path of the
// CPU profile to write. SIGUSR1 starts the profile, a second SIGUSR1 stops
// and writes it, then <path>.done appears.
const profileEnv = "BIOSYNC_BENCH_CPUPROFILE"

// profileOverlay is added to package main of cmd/biosync at build time (go
// build -overlay) when --cpuprofile is given; the repository's files are
// not touched and a normal build does not contain it.
const profileOverlay = `package main

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func init() {
	path := os.Getenv("` + profileEnv + `")
	if path == "" {
		return
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1)
	go func() {
		var f *os.File
		for range sigs {
			if f == nil {
				var err error
				if f, err = os.Create(path); err != nil {
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					f = nil
				}
				continue
			}
			pprof.StopCPUProfile()
			f.Close()
			f = nil
			_ = os.WriteFile(path+".done", nil, 0o644)
		}
	}()
}
`

// buildServer builds cmd/biosync into dir (with the profiling overlay when
// profile is set) and returns the binary's path.
func buildServer(ctx context.Context, dir string, profile bool) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "biosync")
	args := []string{"build", "-o", bin}
	if profile {
		src := filepath.Join(dir, "zz_bench_cpuprofile.go")
		if err := os.WriteFile(src, []byte(profileOverlay), 0o644); err != nil {
			return "", err
		}
		ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "cmd", "biosync", "zz_bench_cpuprofile.go"): src}})
		ovPath := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ovPath)
	}
	args = append(args, "./cmd/biosync")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/biosync: %v\n%s", err, out)
	}
	return bin, nil
}

// childEnv is this process's environment without any BIOSYNC_ variable,
// plus set.
func childEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BIOSYNC_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within %s (last answer: %s)", url, timeout, last)
}

// profilePath names the profile of one phase: base with the phase before
// its extension (cpu.pprof -> cpu-ingest.pprof).
func profilePath(base, phase string) string {
	ext := filepath.Ext(base)
	if ext == "" {
		ext = ".pprof"
	}
	return strings.TrimSuffix(base, filepath.Ext(base)) + "-" + phase + ext
}

// moveFile renames src to dst, copying when they are on different file
// systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return err
	}
	return os.Remove(src)
}

// pprofTop is `go tool pprof -top` of a profile (or why it failed).
func pprofTop(ctx context.Context, path string) string {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=35", path).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof %s: %v\n%s", path, err, out)
	}
	return string(out)
}
