package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
)

// The refusals net/http answers by itself, before any handler runs: it
// writes a fixed plain-text response straight to the connection and
// closes it, and offers no hook to answer otherwise. This file turns
// exactly those answers into problems with the security headers every
// other response carries; see the package documentation for why it is
// done on the connection.

// Timeouts of the production http.Server (e.Server of New), which Serve
// runs.
const (
	// readHeaderTimeout bounds a slow client's request head (slowloris).
	readHeaderTimeout = 5 * time.Second
	// readTimeout bounds reading a whole request, a 1 MiB push included.
	readTimeout = 30 * time.Second
	// writeTimeout bounds a handler and its answer, a consistency wait
	// included.
	writeTimeout = 30 * time.Second
	// idleTimeout closes keep-alive connections nobody uses.
	idleTimeout = 120 * time.Second
)

// Problem kinds only the connection layer answers with: the request never
// became one the API could route.
var (
	kindHeaderTooLarge   = edge.Kind{Status: http.StatusRequestHeaderFieldsTooLarge, Slug: "header-fields-too-large", Title: "Request header fields too large"}
	kindTransferEncoding = edge.Kind{Status: http.StatusNotImplemented, Slug: "unsupported-transfer-encoding", Title: "Unsupported transfer encoding"}
	kindHTTPVersion      = edge.Kind{Status: http.StatusHTTPVersionNotSupported, Slug: "http-version-not-supported", Title: "HTTP version not supported"}
	kindExpectation      = edge.Kind{Status: http.StatusExpectationFailed, Slug: "expectation-failed", Title: "Expectation failed"}
)

// routeUnparsed labels refusals in the request metrics: no route, no
// method, the request was never parsed.
const routeUnparsed = "unparsed"

// Serve answers HTTP on ln with the http.Server New configured (e.Server):
// its timeouts and header limit, and net/http's own refusals rewritten as
// problems. It returns like http.Server.Serve; stop it with
// e.Server.Shutdown. Do not use e.Start: echo would replace the handler
// that tells handler responses from refusals, and listen without the
// wrapper.
func Serve(e *echo.Echo, ln net.Listener) error {
	return e.Server.Serve(refusalListener{ln})
}

// refusalListener hands out refusalConns. A server other than e.Server
// never claims them, so they only pass bytes through.
type refusalListener struct{ net.Listener }

// Accept wraps the next connection.
func (l refusalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &refusalConn{Conn: c}, nil
}

// refusalConn is one client connection. While no handler owns the
// response being written, a write that is one of net/http's own refusals
// is replaced by refuse's problem; everything else passes unchanged.
type refusalConn struct {
	net.Conn
	// refuse is set by the server's ConnContext before the connection is
	// served; nil means it is not served by New's server.
	refuse func(refusal) []byte
	// handled is true from the moment a handler receives a request until
	// the connection is idle again (its answer flushed): net/http only
	// refuses a request it could not hand over, so nothing written
	// meanwhile is ever rewritten, whatever its bytes.
	handled atomic.Bool
}

// Write replaces a refusal of net/http with a problem. net/http writes
// each refusal in one call and closes the connection after it.
func (c *refusalConn) Write(p []byte) (int, error) {
	if c.refuse == nil || c.handled.Load() {
		return c.Conn.Write(p)
	}
	r, ok := parseRefusal(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(c.refuse(r)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite keeps net/http's half-close after a 431 (the client may still
// be sending its headers; closing only the write side lets it read the
// answer instead of a reset).
func (c *refusalConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connKey carries a request's refusalConn in its context.
type connKey struct{}

// configureHTTPServer makes srv the production server of h: limits,
// timeouts and the hooks that let refusalConn tell a handler's answer from
// net/http's own.
func (s *server) configureHTTPServer(srv *http.Server, h http.Handler) {
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*refusalConn); ok {
			c.handled.Store(true)
		}
		h.ServeHTTP(w, r)
	})
	srv.MaxHeaderBytes = s.cfg.MaxHeaderBytes
	srv.ReadHeaderTimeout = readHeaderTimeout
	srv.ReadTimeout = readTimeout
	srv.WriteTimeout = writeTimeout
	srv.IdleTimeout = idleTimeout
	// OPTIONS * goes to the API (which answers it as an unknown route, with
	// the security headers) instead of net/http's bare 200.
	srv.DisableGeneralOptionsHandler = true
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		rc, ok := c.(*refusalConn)
		if !ok {
			return ctx
		}
		rc.refuse = s.refusal
		return context.WithValue(ctx, connKey{}, rc)
	}
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if rc, ok := c.(*refusalConn); ok && st == http.StateIdle {
			rc.handled.Store(false)
		}
	}
}

// refusal is one of net/http's own answers.
type refusal struct {
	proto  string // HTTP/1.1, or HTTP/1.0 for a 417 to an HTTP/1.0 request
	status int
	// reason is net/http's fixed text after the status ("" when none); it
	// selects a detail and is never sent on.
	reason string
}

// textErrorHeaders are the headers of net/http's plain-text refusals.
const textErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// parseRefusal recognises net/http's refusals by their exact shapes
// (net/http/server.go): the plain-text errors of conn.serve
//
//	HTTP/1.1 <status> <text>[: <reason>]\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n<status> <text>[: <reason>]
//
// (for 501 the body is "Unsupported transfer encoding"), and the 417 of
// response.sendExpectationFailed, a header-only response with Connection,
// Date and Content-Length: 0.
func parseRefusal(p []byte) (refusal, bool) {
	s := string(p)
	if rest, ok := strings.CutPrefix(s, "HTTP/1.1 "); ok {
		if line, body, ok := strings.Cut(rest, textErrorHeaders); ok {
			status, reason, ok := parseStatus(line)
			if ok && (body == line || status == http.StatusNotImplemented && body == "Unsupported transfer encoding") {
				return refusal{proto: "HTTP/1.1", status: status, reason: reason}, true
			}
			return refusal{}, false
		}
	}
	head, body, ok := strings.Cut(s, "\r\n\r\n")
	if !ok || body != "" {
		return refusal{}, false
	}
	lines := strings.Split(head, "\r\n")
	proto, line, _ := strings.Cut(lines[0], " ")
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" || line != "417 Expectation Failed" {
		return refusal{}, false
	}
	for _, l := range lines[1:] {
		switch {
		case l == "Connection: close", l == "Content-Length: 0", strings.HasPrefix(l, "Date: "):
		default:
			return refusal{}, false
		}
	}
	return refusal{proto: proto, status: http.StatusExpectationFailed}, true
}

// parseStatus splits "431 Request Header Fields Too Large" or
// "400 Bad Request: malformed Host header" into status and reason; the
// text must be the status's own.
func parseStatus(line string) (int, string, bool) {
	code, text, ok := strings.Cut(line, " ")
	status, err := strconv.Atoi(code)
	if !ok || err != nil || len(code) != 3 || status < 400 || status > 599 {
		return 0, "", false
	}
	st := http.StatusText(status)
	if text == st {
		return status, "", true
	}
	if reason, ok := strings.CutPrefix(text, st+": "); ok && reason != "" {
		return status, reason, true
	}
	return 0, "", false
}

// refusalProblem is the kind and detail of a refusal. Details are ours,
// chosen by net/http's fixed reasons; nothing the client sent is echoed.
func (s *server) refusalProblem(r refusal) (edge.Kind, string) {
	switch r.status {
	case http.StatusBadRequest:
		switch r.reason {
		case "missing required Host header":
			return edge.KindMalformed, "an HTTP/1.1 request needs a Host header"
		case "malformed Host header":
			return edge.KindMalformed, "the Host header is not a valid host[:port]"
		case "invalid header name":
			return edge.KindMalformed, "a header name is not a valid token"
		case "invalid header value":
			return edge.KindMalformed, "a header value contains a control character"
		}
		return edge.KindMalformed, "the request line or a header is not valid HTTP/1.1 (malformed line, bare CR or LF, conflicting Content-Length)"
	case http.StatusRequestHeaderFieldsTooLarge:
		return kindHeaderTooLarge, "the request line and headers are over " + strconv.Itoa(s.cfg.MaxHeaderBytes) + " bytes"
	case http.StatusNotImplemented:
		return kindTransferEncoding, "the only transfer coding accepted is chunked; or send a Content-Length"
	case http.StatusHTTPVersionNotSupported:
		return kindHTTPVersion, "send HTTP/1.1"
	case http.StatusExpectationFailed:
		return kindExpectation, "the only expectation supported is 100-continue"
	}
	return edge.Kind{Status: r.status, Slug: "request-refused", Title: http.StatusText(r.status)}, "the request was refused before it reached the API"
}

// refusal is the response that replaces r: a problem with the security
// headers and a request id, then the connection closes as net/http
// intended. It is logged and counted like any request.
func (s *server) refusal(r refusal) []byte {
	k, detail := s.refusalProblem(r)
	rid := uuid.NewString()
	// A Problem of strings and an int always encodes.
	body, _ := json.Marshal(edge.Problem{Type: edge.ProblemTypePrefix + k.Slug, Title: k.Title, Status: k.Status, Detail: detail, RequestID: rid})
	h := http.Header{}
	s.setSecurityHeaders(h)
	h.Set(echo.HeaderContentType, problemContentType)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	h.Set(echo.HeaderConnection, "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set(HeaderRequestID, rid)
	var b bytes.Buffer
	b.WriteString(r.proto + " " + strconv.Itoa(k.Status) + " " + http.StatusText(k.Status) + "\r\n")
	_ = h.Write(&b) // a bytes.Buffer does not fail
	b.WriteString("\r\n")
	b.Write(body)

	s.metrics.requests.WithLabelValues(routeUnparsed, "", strconv.Itoa(k.Status)).Inc()
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "http request refused", slog.String("request_id", rid),
		slog.String("route", routeUnparsed), slog.Int("status", k.Status), slog.String("type", k.Slug), slog.String("detail", detail))
	return b.Bytes()
}
