// Package mail sends BioSync's transactional email (verification links,
// password resets, notices about registration attempts) over SMTP with
// wneessen/go-mail. It implements accounts.Mailer; the embedded default
// points it at the in-process relay of package embedded, production at a
// real relay, so there is one sending path everywhere.
package mail

import (
	"context"
	"fmt"

	gomail "github.com/wneessen/go-mail"

	"github.com/biosync/biosync/commands/accounts"
	"github.com/biosync/biosync/domain"
)

// Config is the SMTP relay to send through.
type Config struct {
	// Host and Port of the relay.
	Host string
	Port int
	// From is the sender address, e.g. "BioSync <no-reply@example.com>".
	From string
	// Username and Password authenticate (SMTP AUTH PLAIN/LOGIN) when set.
	Username, Password string
	// TLS is "starttls" (required STARTTLS, the default for production),
	// "tls" (implicit TLS, port 465) or "none" (only for a relay on
	// localhost, such as the embedded one).
	TLS string
}

// Sender sends one message per call; it opens a connection per message,
// which is plenty for account mail and never leaves a dead connection
// behind.
type Sender struct{ cfg Config }

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	switch {
	case cfg.Host == "" || cfg.Port <= 0:
		return nil, fmt.Errorf("mail: relay host and port are required")
	case cfg.From == "":
		return nil, fmt.Errorf("mail: sender address is required")
	}
	switch cfg.TLS {
	case "", "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("mail: TLS must be starttls, tls or none, got %q", cfg.TLS)
	}
	return &Sender{cfg: cfg}, nil
}

// Send delivers m; a relay that cannot be reached is domain.ErrUnavailable.
func (s *Sender) Send(ctx context.Context, m accounts.Mail) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("mail: sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port)}
	switch s.cfg.TLS {
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mail: client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send: %w: %v", domain.ErrUnavailable, err)
	}
	return nil
}
