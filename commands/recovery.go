package commands

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

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/eventstore"
)

// Purposes of mailed tokens (EmailTokens).
const (
	PurposeVerifyEmail   = "verify_email"
	PurposeResetPassword = "reset_password"
)

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
func (h *Handlers) link(path, token string) string {
	base := strings.TrimRight(h.AppURL, "/")
	if base == "" {
		base = "http://localhost:3000"
	}
	return base + path + "?token=" + url.QueryEscape(token)
}

// mailLater sends m in the background (the request does not wait on the
// relay, and a reset answers the same whether or not mail goes out). Three
// attempts over about a minute; a failure is logged without the address.
func (h *Handlers) mailLater(m Mail, what string) {
	if h.Mail == nil {
		return
	}
	go func() {
		for attempt, wait := 1, 2*time.Second; ; attempt, wait = attempt+1, wait*4 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := h.Mail.Send(ctx, m)
			cancel()
			if err == nil {
				return
			}
			if attempt == 3 {
				if h.Logger != nil {
					// SMTP errors quote the recipient: keep the address out of the log.
					msg := strings.ReplaceAll(err.Error(), m.To, "<recipient>")
					h.Logger.Error("could not send account mail", "mail", what, "err", msg)
				}
				return
			}
			time.Sleep(wait)
		}
	}()
}

// sendVerification mails a fresh verification link to a new address.
func (h *Handlers) sendVerification(ctx context.Context, user uuid.UUID, email string) error {
	if h.Mail == nil || h.EmailTokens == nil {
		return nil
	}
	tok, err := newMailToken()
	if err != nil {
		return err
	}
	if err := h.EmailTokens.Issue(ctx, user, PurposeVerifyEmail, tok, VerifyEmailTTL); err != nil {
		return err
	}
	h.mailLater(Mail{To: email, Subject: "Confirm your email address for BioSync",
		Text: "Welcome to BioSync.\n\nConfirm this address by opening the link below within 24 hours:\n\n" +
			h.link("/verify-email", tok) + "\n\nIf you did not create a BioSync account, ignore this message.\n"}, "verify_email")
	return nil
}

// noticeRegistrationAttempt tells the owner of an address that someone
// tried to register it again. Registration answers 409 (the address is
// taken, which the route's rate limit keeps from becoming an enumeration
// tool); the owner learns about it from this mail.
func (h *Handlers) noticeRegistrationAttempt(email string) {
	h.mailLater(Mail{To: email, Subject: "Someone tried to create a BioSync account with your address",
		Text: "Someone tried to register a new BioSync account with this email address, which already has an account.\n\n" +
			"If it was you, log in instead, or reset your password at " + h.link("/password-reset", "") + ".\n" +
			"If it was not you, nothing changed: your account is safe.\n"}, "registration_attempt")
}

// VerifyEmail spends a verification token and appends user.email_verified.
// Unknown, spent and expired tokens get one answer: 422 naming /token.
func (h *Handlers) VerifyEmail(ctx context.Context, token string) (Accepted, error) {
	user, err := h.EmailTokens.Consume(ctx, PurposeVerifyEmail, token)
	if errors.Is(err, domain.ErrNotFound) {
		return Accepted{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/token", Detail: "unknown, used or expired token; request a new one"}}}
	}
	if err != nil {
		return Accepted{}, err
	}
	id := eventstore.DeterministicID("user.email_verified", user.String(), token)
	e, err := h.newEvent(ctx, id, user, identity.EventEmailVerified, identity.EmailVerified{VerifiedAt: h.now().UTC()})
	if err != nil {
		return Accepted{}, err
	}
	pos, err := h.Log.Append(ctx, e)
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{EventID: id, Token: eventstore.Token{pos}}, nil
}

// RequestPasswordReset mails a reset link when email belongs to an active
// account. It answers the same (nil) for unknown addresses, and the mail
// goes out in the background, so neither the answer nor its timing tells
// whether an account exists. A malformed address is a 422 (no oracle: it
// cannot be anyone's address).
func (h *Handlers) RequestPasswordReset(ctx context.Context, email string) error {
	v := &domain.ValidationError{}
	identity.ValidateEmail(email, v)
	if err := v.Err(); err != nil {
		return err
	}
	email = identity.NormalizeEmail(email)
	acc, err := h.Accounts.ByEmailKey(ctx, h.emailKey(email))
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
			err = h.EmailTokens.Issue(ictx, acc.UserID, PurposeResetPassword, tok, ResetPasswordTTL)
		}
		if err != nil {
			if h.Logger != nil {
				h.Logger.Error("password reset not prepared", "user_id", acc.UserID, "err", err)
			}
			return
		}
		h.mailLater(Mail{To: email, Subject: "Reset your BioSync password",
			Text: "Someone asked to reset the password of the BioSync account with this address.\n\n" +
				"To choose a new password, open the link below within one hour:\n\n" + h.link("/password-reset", tok) +
				"\n\nIf it was not you, ignore this message: your password stays as it is.\n"}, "reset_password")
	}()
	return nil
}

// ConfirmPasswordReset sets a new password with a reset token, ends every
// session of the user (refresh tokens and earlier access tokens) and
// records the change in the audit log. Unknown, spent and expired tokens
// get one answer: 422 naming /token.
func (h *Handlers) ConfirmPasswordReset(ctx context.Context, token, password, ip string) error {
	if h.CheckPassword != nil {
		if err := h.CheckPassword(password); err != nil {
			var pv *domain.ValidationError
			if errors.As(err, &pv) {
				return pv
			}
			return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/password", Detail: err.Error()}}}
		}
	}
	user, err := h.EmailTokens.Consume(ctx, PurposeResetPassword, token)
	if errors.Is(err, domain.ErrNotFound) {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/token", Detail: "unknown, used or expired token; request a new one"}}}
	}
	if err != nil {
		return err
	}
	hash, err := h.Passwords.Hash(password)
	if err != nil {
		return err
	}
	acc, err := h.Accounts.ByID(ctx, user)
	if err != nil {
		return err
	}
	if h.Sessions == nil {
		return errors.New("commands: no session store configured")
	}
	// The new password and the end of every session commit together, as
	// for a password change.
	if err := h.Sessions.ChangePassword(ctx, user, acc.PasswordHash, hash); err != nil {
		return fmt.Errorf("store new password: %w", err)
	}
	h.audit(ctx, AuditEntry{Action: AuditPasswordChange, Actor: user, Subject: user, IP: ip, Detail: map[string]string{"via": "password_reset"}})
	return nil
}

// ResendVerification mails a new verification link to email (the user's
// registered address, read by the caller from the user's own profile);
// earlier links stop working.
func (h *Handlers) ResendVerification(ctx context.Context, user uuid.UUID, email string) error {
	if h.Mail == nil || h.EmailTokens == nil {
		return fmt.Errorf("account mail not configured: %w", domain.ErrUnavailable)
	}
	return h.sendVerification(ctx, user, email)
}
