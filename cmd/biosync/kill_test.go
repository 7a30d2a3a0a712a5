package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/embedded"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/deploy/testlayer"
)

// serveChild is the childEnv value that makes the test binary run
// `biosync serve`, so a test can kill -9 a real server process.
const serveChild = "serve"

func init() {
	if os.Getenv(childEnv) != serveChild {
		return
	}
	if err := run(context.Background(), []string{"serve"}, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "serve child: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// servedProcess is `biosync serve` with the embedded default, as `make run`
// starts it, in a child process the test can SIGKILL.
type servedProcess struct {
	cmd  *exec.Cmd
	base string
	out  *lockedWriter
}

func startServeProcess(t *testing.T, dataDir string) *servedProcess {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	var log strings.Builder
	p := &servedProcess{cmd: exec.Command(os.Args[0], "-test.run=^$"), base: "http://" + addr, out: &lockedWriter{w: &log}}
	// Only what the embedded default needs: no backend configuration, so
	// it runs kfake, miniredis and a PostgreSQL cluster under dataDir.
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		childEnv + "=" + serveChild, "BIOSYNC_DATA_DIR=" + dataDir, "BIOSYNC_HTTP_ADDR=" + addr, "BIOSYNC_LOG_LEVEL=warn"}
	if bin := os.Getenv(embedded.PostgresBinEnv); bin != "" {
		p.cmd.Env = append(p.cmd.Env, embedded.PostgresBinEnv+"="+bin)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.out.mu.Lock()
			t.Logf("serve child output:\n%s", log.String())
			p.out.mu.Unlock()
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if res, err := http.Get(p.base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		require.False(t, time.Now().After(deadline), "the serve child never became healthy")
		require.Nil(t, p.cmd.ProcessState, "the serve child exited")
		time.Sleep(100 * time.Millisecond)
	}
}

// kill is kill -9: no shutdown, no last snapshot, nothing flushed.
func (p *servedProcess) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// TestAKilledServerStillRefusesADeliveryIDReusedWithAnotherBody is issue
// 9's finding 4 as the adversarial run found it: `make run` (the embedded
// default, whose Redis is in process) is killed with SIGKILL between a
// delivery and its replay with a different body. The replay must not be
// applied, neither for a webhook-id nor for an Idempotency-Key, with the
// Redis snapshot as the kill left it and with Redis emptied (a flush, the
// TTL): the durable record of the delivery answers.
func TestAKilledServerStillRefusesADeliveryIDReusedWithAnotherBody(t *testing.T) {
	testlayer.Integration(t, "biosync serve in a child process with the embedded default")
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	p := startServeProcess(t, dir)
	c := &client{t: t, base: p.base}
	code, _, reg := c.do("POST", "/v1/auth/register", map[string]string{"email": "killed@example.com", "password": "correct horse battery", "timezone": "UTC"}, nil)
	require.Equal(t, 201, code, "register: %v", reg)
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": "killed@example.com", "password": "correct horse battery"}, nil)
	c.token, _ = login["access_token"].(string)
	require.NotEmpty(t, c.token, "login: %v", login)
	secret, err := os.ReadFile(filepath.Join(dir, "push_secret"))
	require.NoError(t, err)
	key, err := webhooks.ParseSecret(strings.TrimSpace(string(secret)))
	require.NoError(t, err)

	weighing := func(kg float64, at string) []byte {
		return fmt.Appendf(nil, `{"source":{"provider":"scale"},"samples":[{"type":"weight","start":"%s","end":"%s","value":%g,"unit":"kg"}]}`, at, at, kg)
	}
	webhook := func(kg float64) (int, map[string]any) {
		body := fmt.Appendf(nil, `{"user_id":%q,%s`, reg["id"], weighing(kg, "2026-11-20T07:00:00Z")[1:])
		now := time.Now()
		code, _, out := c.do("POST", "/v1/webhooks/push", body, map[string]string{"webhook-id": "msg_kill", "webhook-timestamp": fmt.Sprint(now.Unix()), "webhook-signature": webhooks.Sign(key, "msg_kill", now, body)})
		return code, out
	}
	app := func(kg float64) (int, map[string]any) {
		code, _, out := c.do("POST", "/v1/me/samples", weighing(kg, "2026-11-21T07:00:00Z"), map[string]string{"Idempotency-Key": "key-kill"})
		return code, out
	}
	code, out := webhook(70)
	require.Equal(t, 202, code, "first delivery: %v", out)
	code, out = app(71)
	require.Equal(t, 202, code, "first app push: %v", out)

	for _, flush := range []bool{false, true} {
		p.kill()
		if flush {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "redis")), "empty the embedded Redis")
		}
		p = startServeProcess(t, dir)
		c.base = p.base

		code, out = webhook(99)
		assert.Equal(t, 409, code, "flush=%v: the webhook-id with another body: %v", flush, out)
		assert.Equal(t, "urn:biosync:problem:delivery-id-reused", out["type"], "flush=%v", flush)
		code, out = app(98)
		assert.Equal(t, 422, code, "flush=%v: the Idempotency-Key with another body: %v", flush, out)
		assert.Equal(t, "urn:biosync:problem:idempotency-key-reused", out["type"], "flush=%v", flush)
		code, out = webhook(70)
		assert.Equal(t, 202, code, "flush=%v: a true redelivery: %v", flush, out)
		assert.Equal(t, true, out["duplicate"], "flush=%v: a true redelivery is a duplicate", flush)
		code, out = app(71)
		assert.Equal(t, 202, code, "flush=%v: the same Idempotency-Key and body: %v", flush, out)

		var values []float64
		require.Eventually(t, func() bool {
			code, _, w := c.do("GET", "/v1/metrics/weight?bucket=raw&from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z", nil, nil)
			pts, _ := w["points"].([]any)
			if code != 200 || len(pts) != 2 {
				return false
			}
			values = values[:0]
			for _, pt := range pts {
				values = append(values, pt.(map[string]any)["value"].(float64))
			}
			return true
		}, 30*time.Second, 100*time.Millisecond, "flush=%v: the two weighings never read back", flush)
		assert.InDeltaSlice(t, []float64{70, 71}, values, 1e-6, "flush=%v: only the first bodies count", flush)
	}
}
