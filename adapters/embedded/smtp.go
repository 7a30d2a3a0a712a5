package embedded

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTP is an in-process SMTP server, the embedded default's mail relay: the
// platform sends through the same SMTP client (adapters/mail) it uses in
// production, and every accepted message is written to the inbox directory
// (<name>.eml, one file per message) and logged, so a developer can follow a
// verification or reset link and tests can read what was sent. It accepts
// any sender and recipient on 127.0.0.1 without authentication. Create it
// with [StartSMTP].
type SMTP struct {
	srv   *smtp.Server
	ln    net.Listener
	inbox string
	log   *slog.Logger
	mu    sync.Mutex
	seq   int
}

// StartSMTP listens on a random 127.0.0.1 port and delivers into inbox
// (created if needed). log receives one line per message (nil discards).
func StartSMTP(inbox string, log *slog.Logger) (*SMTP, error) {
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		return nil, fmt.Errorf("embedded smtp: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &SMTP{inbox: inbox, log: log}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded smtp: %w", err)
	}
	s.ln = ln
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the server's host:port.
func (s *SMTP) Addr() string { return s.ln.Addr().String() }

// Inbox is the directory that receives the messages.
func (s *SMTP) Inbox() string { return s.inbox }

// Close stops the server.
func (s *SMTP) Close() error { return s.srv.Close() }

func (s *SMTP) deliver(from string, to []string, raw []byte) error {
	s.mu.Lock()
	s.seq++
	name := fmt.Sprintf("%s-%04d.eml", time.Now().UTC().Format("20060102T150405.000000000"), s.seq)
	s.mu.Unlock()
	// Write then rename: a reader of the inbox never sees half a message.
	tmp := filepath.Join(s.inbox, "."+name+".tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.inbox, name)); err != nil {
		return err
	}
	subject, text := "", ""
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		text = MessageText(m)
	}
	// The embedded relay is the developer's mailbox: showing the message
	// (links included) is its purpose. Production SMTP never logs mail.
	s.log.Info("dev mail delivered", "to", strings.Join(to, ", "), "subject", subject, "text", text, "file", filepath.Join(s.inbox, name))
	return nil
}

// MessageText returns a plain-text message's body with its transfer
// encoding (quoted-printable or base64) undone; it consumes m.Body.
func MessageText(m *mail.Message) string {
	var r io.Reader = m.Body
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

// ReadInbox returns the messages in dir (an SMTP inbox), oldest first.
func ReadInbox(dir string) ([]*mail.Message, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*mail.Message
	for _, e := range entries { // ReadDir sorts by name: time, then sequence
		if !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, m)
	}
	return out, nil
}

type backend struct{ s *SMTP }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *SMTP
	from string
	to   []string
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	if len(x.to) == 0 {
		return errors.New("no recipients")
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return x.s.deliver(x.from, x.to, raw)
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }
