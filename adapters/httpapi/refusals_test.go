package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/edge"
)

// listening serves the harness's API on a loopback port as biosync serve
// does (Serve, on the http.Server New configured) and returns its address.
func (h *harness) listening() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(h.t, err)
	done := make(chan error, 1)
	go func() { done <- Serve(h.e, ln) }()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(h.t, h.e.Server.Shutdown(ctx), "shutdown")
		assert.ErrorIs(h.t, <-done, http.ErrServerClosed, "Serve returned")
	})
	return ln.Addr().String()
}

// rawClient is one raw TCP connection to the server: the tests write bytes no
// well-behaved HTTP client would send.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// send writes raw in the background (a server that refuses a long head
// stops reading it) and reads one response with its body.
func (c *rawClient) send(raw string) (*http.Response, []byte) {
	c.t.Helper()
	go func() { _, _ = io.WriteString(c.conn, raw) }()
	return c.read()
}

func (c *rawClient) read() (*http.Response, []byte) {
	c.t.Helper()
	res, err := http.ReadResponse(c.r, nil)
	require.NoError(c.t, err, "no HTTP response")
	body, err := io.ReadAll(res.Body)
	require.NoError(c.t, err, "response body")
	return res, body
}

// closed tells whether the server closed the connection: nothing more to
// read, or a reset (after a 431 the server closes with the rest of the
// oversized head unread).
func (c *rawClient) closed() bool {
	c.t.Helper()
	_, err := c.r.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// refusedAsProblem checks an answer the API gave before routing: a
// complete problem of kind slug, every security header, a request id the
// body repeats, and a closed connection.
func refusedAsProblem(t *testing.T, c *rawClient, res *http.Response, body []byte, status int, slug, name string) edge.Problem {
	t.Helper()
	require.Equal(t, status, res.StatusCode, "%s: %s", name, body)
	assert.Equal(t, problemContentType, res.Header.Get("Content-Type"), "%s", name)
	for k, v := range wantSecurityHeaders {
		assert.Equal(t, v, res.Header.Get(k), "%s: %s", name, k)
	}
	assert.Empty(t, res.Header.Values("Set-Cookie"), "%s sets a cookie", name)
	assert.True(t, res.Close, "%s: Connection: close", name)
	assert.NotEmpty(t, res.Header.Get("Date"), "%s: Date", name)
	assert.Equal(t, int64(len(body)), res.ContentLength, "%s: Content-Length", name)
	var p edge.Problem
	require.NoError(t, json.Unmarshal(body, &p), "%s: %s", name, body)
	assert.Equal(t, edge.ProblemTypePrefix+slug, p.Type, "%s", name)
	assert.Equal(t, status, p.Status, "%s", name)
	assert.NotEmpty(t, p.Title, "%s", name)
	assert.NotEmpty(t, p.Detail, "%s", name)
	assert.NotEmpty(t, p.RequestID, "%s", name)
	assert.Equal(t, p.RequestID, res.Header.Get(HeaderRequestID), "%s: the header and the body name one request id", name)
	assert.True(t, c.closed(), "%s: the connection stays open after a refusal", name)
	return p
}

// TestRequestsNetHTTPRefusesAreAnsweredAsProblems: what Go's HTTP server
// refuses before any handler runs (a bad or missing Host, a bare CR, a
// header section over the limit, a transfer coding it does not implement,
// a request line that is not one, another HTTP version, an unknown
// expectation) answers like every other error of the API: a problem with
// the security headers. Nothing the client sent is echoed.
func TestRequestsNetHTTPRefusesAreAnsweredAsProblems(t *testing.T) {
	h := newHarness(t)
	addr := h.listening()
	const evil = "<script>alert(1)</script>"
	cases := []struct {
		name   string
		raw    string
		status int
		slug   string
		proto  string
	}{
		{"a Host that is no host", "GET /healthz HTTP/1.1\r\nHost: " + evil + "\r\n\r\n", 400, "malformed-request", "HTTP/1.1"},
		{"no Host on HTTP/1.1", "GET /healthz HTTP/1.1\r\nUser-Agent: " + evil + "\r\n\r\n", 400, "malformed-request", "HTTP/1.1"},
		{"a bare CR in a header value", "GET /healthz HTTP/1.1\r\nHost: api\r\nX-Note: " + evil + "\rX-Injected: 1\r\n\r\n", 400, "malformed-request", "HTTP/1.1"},
		{"a header name that is no token", "GET /healthz HTTP/1.1\r\nHost: api\r\n" + evil + ": 1\r\n\r\n", 400, "malformed-request", "HTTP/1.1"},
		{"two different Content-Lengths", "POST /v1/auth/register HTTP/1.1\r\nHost: api\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "malformed-request", "HTTP/1.1"},
		{"a header section over the limit", "GET /healthz HTTP/1.1\r\nHost: api\r\nX-Pad: " + strings.Repeat(evil, DefaultMaxHeaderBytes/len(evil)+1000) + "\r\n\r\n", 431, "header-fields-too-large", "HTTP/1.1"},
		{"an unsupported Transfer-Encoding", "POST /v1/auth/register HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: " + evil + "\r\n\r\n{}", 501, "unsupported-transfer-encoding", "HTTP/1.1"},
		{"a malformed request line", "GET /healthz " + evil + " HTTP/1.1\r\nHost: api\r\n\r\n", 400, "malformed-request", "HTTP/1.1"},
		{"a TLS ClientHello on the plain-HTTP port", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + evil + "\r\n\r\n", 400, "malformed-request", "HTTP/1.1"},
		{"HTTP/3 on an HTTP/1 socket", "GET /healthz HTTP/3.0\r\nHost: api\r\n\r\n", 505, "http-version-not-supported", "HTTP/1.1"},
		{"an expectation other than 100-continue", "GET /healthz HTTP/1.1\r\nHost: api\r\nExpect: " + evil + "\r\n\r\n", 417, "expectation-failed", "HTTP/1.1"},
		{"the same from an HTTP/1.0 client", "GET /healthz HTTP/1.0\r\nExpect: " + evil + "\r\n\r\n", 417, "expectation-failed", "HTTP/1.0"},
	}
	for _, tc := range cases {
		c := dial(t, addr)
		res, body := c.send(tc.raw)
		p := refusedAsProblem(t, c, res, body, tc.status, tc.slug, tc.name)
		assert.Equal(t, tc.proto, res.Proto, "%s", tc.name)
		assert.NotContains(t, string(body), "script", "%s echoes the request", tc.name)
		for _, vs := range res.Header {
			assert.NotContains(t, strings.Join(vs, " "), "script", "%s echoes the request", tc.name)
		}
		assert.Contains(t, h.logs.String(), p.RequestID, "%s: the refusal is not in the log", tc.name)
	}
	assert.Equal(t, 1.0, counterValue(t, h.e2metrics().requests.WithLabelValues(routeUnparsed, "", "431")), "refusals are counted")
}

// TestRefusalsCarryHSTSWhenTheDeploymentServesTLS: the refusals get the
// same optional header as everything else.
func TestRefusalsCarryHSTSWhenTheDeploymentServesTLS(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Deps) { c.HSTSMaxAge = 730 * 24 * time.Hour })
	c := dial(t, h.listening())
	res, body := c.send("GET /healthz HTTP/1.1\r\n\r\n")
	refusedAsProblem(t, c, res, body, 400, "malformed-request", "no Host")
	assert.Equal(t, "max-age=63072000; includeSubDomains", res.Header.Get("Strict-Transport-Security"))
}

// TestRequestsNetHTTPWouldAnswerItselfReachTheAPI: OPTIONS * (which
// net/http answers with a bare 200 by default) and the HTTP/2 preface
// (net/http hands it to the handler) are answered by the API, with its
// headers.
func TestRequestsNetHTTPWouldAnswerItselfReachTheAPI(t *testing.T) {
	h := newHarness(t)
	addr := h.listening()
	for name, raw := range map[string]string{
		"OPTIONS *":           "OPTIONS * HTTP/1.1\r\nHost: api\r\n\r\n",
		"the HTTP/2 preface":  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"an h2c upgrade":      "GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
		"an unknown protocol": "GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	} {
		res, body := dial(t, addr).send(raw)
		assert.NotEmpty(t, res.Header.Get(HeaderRequestID), "%s: %d %s", name, res.StatusCode, body)
		for k, v := range wantSecurityHeaders {
			assert.Equal(t, v, res.Header.Get(k), "%s (%d): %s", name, res.StatusCode, k)
		}
		if res.StatusCode >= 400 {
			assert.Equal(t, problemContentType, res.Header.Get("Content-Type"), "%s: %d %s", name, res.StatusCode, body)
		}
	}
}

// goRefusal is net/http's answer to a request without Host, byte for byte.
const goRefusal = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"

// TestHandlerAnswersAreNeverRewritten: a handler whose answer is, byte for
// byte, a refusal of net/http (plain text, Connection: close, no Date, no
// length) goes out exactly as written: only what net/http writes while no
// handler owns the connection is replaced.
func TestHandlerAnswersAreNeverRewritten(t *testing.T) {
	r, ok := parseRefusal([]byte(goRefusal))
	require.True(t, ok, "the mimicked bytes are not a refusal; the test would prove nothing")
	require.Equal(t, 400, r.status)

	h := newHarness(t)
	h.e.GET("/mimic", func(c echo.Context) error {
		w := c.Response().Writer
		hdr := w.Header()
		for k := range hdr {
			delete(hdr, k) // the security headers, the request id
		}
		hdr["Date"] = nil
		hdr["Content-Length"] = nil
		hdr.Set("Transfer-Encoding", "identity")
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, err := io.WriteString(w, "400 Bad Request")
		return err
	})
	c := dial(t, h.listening())
	go func() { _, _ = io.WriteString(c.conn, "GET /mimic HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n") }()
	got, err := io.ReadAll(c.r)
	require.NoError(t, err)
	assert.Equal(t, goRefusal, string(got), "the handler's answer was rewritten")
}

// TestKeepAliveConnectionsCarryOnAfterGoodRequests: good requests on one
// connection are answered as always and keep it open, pipelined or not;
// only a refused request ends it, with a problem.
func TestKeepAliveConnectionsCarryOnAfterGoodRequests(t *testing.T) {
	h := newHarness(t)
	c := dial(t, h.listening())
	good := "GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n"
	for i, raw := range []string{good, good, good + good} {
		res, body := c.send(raw)
		if strings.Count(raw, "GET") == 2 {
			assert.Equal(t, 200, res.StatusCode, "pipelined request %d: %s", i, body)
			res, body = c.read()
		}
		assert.Equal(t, 200, res.StatusCode, "request %d: %s", i, body)
		assert.JSONEq(t, `{"status":"ok"}`, string(body), "request %d", i)
		assert.False(t, res.Close, "request %d closed the connection", i)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), "request %d", i)
	}
	res, body := c.send(good + "GET /healthz HTTP/1.1\r\n\r\n")
	assert.Equal(t, 200, res.StatusCode, "the good request before a refused one: %s", body)
	res, body = c.read()
	refusedAsProblem(t, c, res, body, 400, "malformed-request", "no Host after a good request")
}

// TestOnlyNetHTTPsOwnShapesAreRecognised: the recogniser takes net/http's
// refusals as written in net/http/server.go and nothing that differs from
// them, such as a response with a Date or another body.
func TestOnlyNetHTTPsOwnShapesAreRecognised(t *testing.T) {
	const hdrs = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	refusals := map[string]refusal{
		"HTTP/1.1 431 Request Header Fields Too Large" + hdrs + "431 Request Header Fields Too Large":                                                   {"HTTP/1.1", 431, ""},
		"HTTP/1.1 501 Not Implemented" + hdrs + "Unsupported transfer encoding":                                                                         {"HTTP/1.1", 501, ""},
		"HTTP/1.1 400 Bad Request: malformed Host header" + hdrs + "400 Bad Request: malformed Host header":                                             {"HTTP/1.1", 400, "malformed Host header"},
		"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version" + hdrs + "505 HTTP Version Not Supported: unsupported protocol version": {"HTTP/1.1", 505, "unsupported protocol version"},
		"HTTP/1.0 417 Expectation Failed\r\nConnection: close\r\nDate: Tue, 08 Dec 2026 00:46:20 GMT\r\nContent-Length: 0\r\n\r\n":                      {"HTTP/1.0", 417, ""},
	}
	for raw, want := range refusals {
		got, ok := parseRefusal([]byte(raw))
		assert.True(t, ok, "%q", raw)
		assert.Equal(t, want, got, "%q", raw)
	}
	for _, raw := range []string{
		"HTTP/1.1 400 Bad Request" + hdrs + "400 Bad Request: more",
		"HTTP/1.1 400 Bad Request" + hdrs[:len(hdrs)-2] + "Date: Tue, 08 Dec 2026 00:46:20 GMT\r\n\r\n400 Bad Request",
		"HTTP/1.1 400 Teapot" + hdrs + "400 Teapot",
		"HTTP/1.1 200 OK" + hdrs + "200 OK",
		"HTTP/1.1 501 Not Implemented" + hdrs + "501 Not Implemented: Unsupported transfer encoding",
		"HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 417 Expectation Failed\r\nX-Content-Type-Options: nosniff\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
		goRefusal[:40],
		"",
	} {
		_, ok := parseRefusal([]byte(raw))
		assert.False(t, ok, "%q", raw)
	}
}
