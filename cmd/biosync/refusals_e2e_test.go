package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeAnswersWhatNetHTTPRefusesAsProblems: biosync serve answers the
// requests Go's HTTP server refuses by itself (here a bad Host and a
// header section over the API's 64 KiB limit, which net/http's default of
// 1 MiB would have let through) as problems with every security header,
// HSTS included (on by default with real backends), like any other error.
func TestServeAnswersWhatNetHTTPRefusesAsProblems(t *testing.T) {
	s := startServer(t, backendEnv(t))
	defer s.stop()
	addr := strings.TrimPrefix(s.url, "http://")
	security := map[string]string{
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	}
	for _, tc := range []struct {
		name   string
		raw    string
		status int
		slug   string
	}{
		{"a bad Host", "GET /healthz HTTP/1.1\r\nHost: not a host\r\n\r\n", 400, "malformed-request"},
		{"80 KiB of headers", "GET /healthz HTTP/1.1\r\nHost: api\r\nX-Pad: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "header-fields-too-large"},
	} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		go func() { _, _ = io.WriteString(conn, tc.raw) }()
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, "%s: no HTTP response", tc.name)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err, "%s", tc.name)
		conn.Close()

		require.Equal(t, tc.status, res.StatusCode, "%s: %s", tc.name, body)
		assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), "%s", tc.name)
		for k, v := range security {
			assert.Equal(t, v, res.Header.Get(k), "%s: %s", tc.name, k)
		}
		var p struct {
			Type      string `json:"type"`
			Status    int    `json:"status"`
			Detail    string `json:"detail"`
			RequestID string `json:"request_id"`
		}
		require.NoError(t, json.Unmarshal(body, &p), "%s: %s", tc.name, body)
		assert.Equal(t, "urn:biosync:problem:"+tc.slug, p.Type, "%s", tc.name)
		assert.Equal(t, tc.status, p.Status, "%s", tc.name)
		assert.NotEmpty(t, p.Detail, "%s", tc.name)
		assert.Equal(t, p.RequestID, res.Header.Get("X-Request-Id"), "%s", tc.name)
	}
}
