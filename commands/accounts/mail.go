package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/eventstore"
)

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

// Lifetimes of mailed tokens: a verification link may wait in an inbox for
// a day; a reset link grants account access and lives one hour (OWASP
// Forgot Password cheat sheet).
const (
	VerifyEmailTTL   = 24 * time.Hour
	ResetPasswordTTL = time.Hour
)

// EmailTokens stores single-use tokens mailed to users, hashed. It is a
// port so the command logic (what a token allows) stays apart from storage.
type EmailTokens interface {
	// Issue stores token for user and purpose, valid for ttl, and retires
	// the user's earlier unused tokens of that purpose.
	Issue(ctx context.Context, user uuid.UUID, purpose, token string, ttl time.Duration) error
	// Consume spends token and returns its user; domain.ErrNotFound when it
	// is unknown, spent or expired.
	Consume(ctx context.Context, purpose, token string) (uuid.UUID, error)
}

// MailDeps is account mail: the relay, the mailed tokens and the
// frontend the links point to. Its zero value is mail off: registration
// sends nothing and the mailed-token commands answer domain.ErrUnavailable
// (cmd then wires no Recovery port either, so those routes answer 503).
type MailDeps struct {
	// Sender delivers the messages; Tokens is required with it.
	Sender Mailer
	// Tokens keeps the single-use tokens mailed to users.
	Tokens EmailTokens
	// AppURL is the frontend's base URL for links in mail
	// (BIOSYNC_APP_URL), e.g. https://app.example.com.
	AppURL string
}

// errMailOff answers the mailed-token commands while account mail is off.
var errMailOff = fmt.Errorf("account mail not configured: %w", domain.ErrUnavailable)

// newMailToken returns 256 random bits, URL-safe.
func newMailToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// link builds the frontend URL that carries a mailed token, e.g.
// https://app.example.com/verify-email?token=...
func (s *Service) link(path, token string) string {
	base := strings.TrimRight(s.d.Mail.AppURL, "/")
	if base == "" {
		base = "http://localhost:3000"
	}
	return base + path + "?token=" + url.QueryEscape(token)
}

// mailLater sends m in the background (the request does not wait on the
// relay, and a reset answers the same whether or not mail goes out). Three
// attempts over about a minute; a failure is logged without the address.
func (s *Service) mailLater(m Mail, what string) {
	if s.d.Mail.Sender == nil {
		return
	}
	go func() {
		for attempt, wait := 1, 2*time.Second; ; attempt, wait = attempt+1, wait*4 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := s.d.Mail.Sender.Send(ctx, m)
			cancel()
			if err == nil {
				return
			}
			if attempt == 3 {
				if s.d.Logger != nil {
					// SMTP errors quote the recipient: keep the address out of the log.
					msg := strings.ReplaceAll(err.Error(), m.To, "<recipient>")
					s.d.Logger.Error("could not send account mail", "mail", what, "err", msg)
				}
				return
			}
			time.Sleep(wait)
		}
	}()
}

// sendVerification mails a fresh verification link to a new address.
func (s *Service) sendVerification(ctx context.Context, user uuid.UUID, email string) error {
	if s.d.Mail.Sender == nil || s.d.Mail.Tokens == nil {
		return nil
	}
	tok, err := newMailToken()
	if err != nil {
		return err
	}
	if err := s.d.Mail.Tokens.Issue(ctx, user, commands.PurposeVerifyEmail, tok, VerifyEmailTTL); err != nil {
		return err
	}
	s.mailLater(Mail{To: email, Subject: "Confirm your email address for BioSync",
		Text: "Welcome to BioSync.\n\nConfirm this address by opening the link below within 24 hours:\n\n" +
			s.link("/verify-email", tok) + "\n\nIf you did not create a BioSync account, ignore this message.\n"}, "verify_email")
	return nil
}

// noticeRegistrationAttempt tells the owner of an address that someone
// tried to register it again. Registration answers 409 (the address is
// taken, which the route's rate limit keeps from becoming an enumeration
// tool); the owner learns about it from this mail.
func (s *Service) noticeRegistrationAttempt(email string) {
	s.mailLater(Mail{To: email, Subject: "Someone tried to create a BioSync account with your address",
		Text: "Someone tried to register a new BioSync account with this email address, which already has an account.\n\n" +
			"If it was you, log in instead, or reset your password at " + s.link("/password-reset", "") + ".\n" +
			"If it was not you, nothing changed: your account is safe.\n"}, "registration_attempt")
}

// VerifyEmail spends a verification token and appends user.email_verified.
// Unknown, spent and expired tokens get one answer: 422 naming /token.
func (s *Service) VerifyEmail(ctx context.Context, token string) (commands.Accepted, error) {
	if s.d.Mail.Tokens == nil {
		return commands.Accepted{}, errMailOff
	}
	user, err := s.d.Mail.Tokens.Consume(ctx, commands.PurposeVerifyEmail, token)
	if errors.Is(err, domain.ErrNotFound) {
		return commands.Accepted{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/token", Detail: "unknown, used or expired token; request a new one"}}}
	}
	if err != nil {
		return commands.Accepted{}, err
	}
	id := eventstore.DeterministicID("user.email_verified", user.String(), token)
	e, err := s.d.Envelope.Event(ctx, id, user, identity.EventEmailVerified, identity.EmailVerified{VerifiedAt: s.d.Envelope.Now.Now().UTC()})
	if err != nil {
		return commands.Accepted{}, err
	}
	pos, err := s.d.Log.Append(ctx, e)
	if err != nil {
		return commands.Accepted{}, err
	}
	return commands.Accepted{EventID: id, Token: eventstore.Token{pos}}, nil
}

// RequestPasswordReset mails a reset link when email belongs to an active
// account. It answers the same (nil) for unknown addresses, and the mail
// goes out in the background, so neither the answer nor its timing tells
// whether an account exists. A malformed address is a 422 (no oracle: it
// cannot be anyone's address).
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	if s.d.Mail.Tokens == nil {
		return errMailOff
	}
	v := &domain.ValidationError{}
	identity.ValidateEmail(email, v)
	if err := v.Err(); err != nil {
		return err
	}
	email = identity.NormalizeEmail(email)
	acc, err := s.d.Accounts.ByEmailKey(ctx, s.d.EmailIndex.Key(email))
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// Issuing the token happens in the background too: a known address
	// must not answer measurably later than an unknown one.
	go func() {
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		tok, err := newMailToken()
		if err == nil {
			err = s.d.Mail.Tokens.Issue(ictx, acc.UserID, commands.PurposeResetPassword, tok, ResetPasswordTTL)
		}
		if err != nil {
			if s.d.Logger != nil {
				s.d.Logger.Error("password reset not prepared", "user_id", acc.UserID, "err", err)
			}
			return
		}
		s.mailLater(Mail{To: email, Subject: "Reset your BioSync password",
			Text: "Someone asked to reset the password of the BioSync account with this address.\n\n" +
				"To choose a new password, open the link below within one hour:\n\n" + s.link("/password-reset", tok) +
				"\n\nIf it was not you, ignore this message: your password stays as it is.\n"}, "reset_password")
	}()
	return nil
}

// ConfirmPasswordReset sets a new password with a reset token, ends every
// session of the user (refresh tokens and earlier access tokens) and
// records the change in the audit log. Unknown, spent and expired tokens
// get one answer: 422 naming /token.
func (s *Service) ConfirmPasswordReset(ctx context.Context, token, password, ip string) error {
	if s.d.Mail.Tokens == nil {
		return errMailOff
	}
	if s.d.PasswordPolicy != nil {
		if err := s.d.PasswordPolicy(password); err != nil {
			var pv *domain.ValidationError
			if errors.As(err, &pv) {
				return pv
			}
			return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/password", Detail: err.Error()}}}
		}
	}
	user, err := s.d.Mail.Tokens.Consume(ctx, commands.PurposeResetPassword, token)
	if errors.Is(err, domain.ErrNotFound) {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/token", Detail: "unknown, used or expired token; request a new one"}}}
	}
	if err != nil {
		return err
	}
	hash, err := s.d.Passwords.Hash(password)
	if err != nil {
		return err
	}
	acc, err := s.d.Accounts.ByID(ctx, user)
	if err != nil {
		return err
	}
	// The new password and the end of every session commit together, as
	// for a password change.
	if err := s.d.Credentials.ChangePassword(ctx, user, acc.PasswordHash, hash); err != nil {
		return fmt.Errorf("store new password: %w", err)
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditPasswordChange, Actor: user, Subject: user, IP: ip, Detail: map[string]string{"via": "password_reset"}})
	return nil
}

// ResendVerification mails a new verification link to email (the user's
// registered address, read by the caller from the user's own profile);
// earlier links stop working.
func (s *Service) ResendVerification(ctx context.Context, user uuid.UUID, email string) error {
	if s.d.Mail.Sender == nil || s.d.Mail.Tokens == nil {
		return errMailOff
	}
	return s.sendVerification(ctx, user, email)
}
