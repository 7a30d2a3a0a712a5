package commands

import "context"

// Mail is one plain-text transactional message.
type Mail struct {
	To, Subject, Text string
}

// Mailer delivers transactional email. It is a port so commands decide
// what to say and when, while SMTP details stay in adapters/mail.
type Mailer interface {
	// Send delivers m or returns an error (domain.ErrUnavailable when the
	// relay cannot be reached).
	Send(ctx context.Context, m Mail) error
}
