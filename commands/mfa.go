package commands

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
)

// ErrMFARequired is the answer to a correct password of an account with MFA
// on when the login carries no code. It wraps domain.ErrUnauthorized; the
// HTTP layer gives it its own problem type (mfa-required) so the client
// knows to ask for the code. It tells a password holder that MFA is on, as
// every two-step TOTP login does; it is only ever returned after the
// password was verified.
var ErrMFARequired = fmt.Errorf("a one-time code is required: %w", domain.ErrUnauthorized)

// ErrInvalidSecondFactor is a login whose password was right but whose
// one-time or recovery code was wrong or already used. It wraps
// domain.ErrUnauthorized (401 like a wrong password).
var ErrInvalidSecondFactor = fmt.Errorf("the one-time code or recovery code is wrong or already used: %w", domain.ErrUnauthorized)

// RecoveryCodeCount is how many recovery codes a set has.
const RecoveryCodeCount = 10

// recoveryAlphabet has 32 letters and digits without 0/o, 1/l: 5 bits a
// character, read aloud or typed from paper without confusion.
const recoveryAlphabet = "abcdefghijkmnpqrstuvwxyz23456789"

// recoveryCodeChars is the length of a recovery code without its hyphen:
// 50 random bits.
const recoveryCodeChars = 10

// totpSecretType is the associated data under which a TOTP secret is
// sealed with the user's data key; it can never be confused with an event
// payload (event types differ) and the user id is bound in too.
const totpSecretType = "mfa.totp_secret"

// maxCodeLen bounds what is normalised and hashed at all.
const maxCodeLen = 64

// TOTPState is a user's TOTP enrolment as stored: the sealed secret,
// whether it is confirmed (MFA on), and the last accepted time step.
type TOTPState struct {
	Secret   []byte
	Enabled  bool
	LastStep int64
}

// MFAStore keeps TOTP enrolments and recovery codes (PostgreSQL in
// adapters/postgres). Turning MFA on or off revokes every session of the
// user and retires their unused password-reset tokens in the same
// transaction, like a password change, so no session opened and no reset
// link mailed under the old rule survives.
type MFAStore interface {
	// TOTPState returns the enrolment of userID; domain.ErrNotFound when
	// there is none.
	TOTPState(ctx context.Context, userID uuid.UUID) (TOTPState, error)
	// StartTOTP stores a pending secret, replacing a pending one;
	// domain.ErrConflict when MFA is already on.
	StartTOTP(ctx context.Context, userID uuid.UUID, sealed []byte) error
	// EnableTOTP confirms the pending secret sealed (domain.ErrConflict
	// when MFA is already on or the pending secret is no longer sealed),
	// records step as used, replaces the recovery codes, revokes every
	// session and retires the unused PurposeResetPassword tokens.
	EnableTOTP(ctx context.Context, userID uuid.UUID, sealed []byte, step int64, codeHashes [][]byte) error
	// DisableTOTP removes the enrolment and the recovery codes, revokes
	// every session and retires the unused PurposeResetPassword tokens;
	// domain.ErrConflict when MFA is off.
	DisableTOTP(ctx context.Context, userID uuid.UUID) error
	// AcceptStep records step as the last used one if it is later than the
	// stored one (a conditional UPDATE: of two concurrent uses of one code
	// exactly one gets true).
	AcceptStep(ctx context.Context, userID uuid.UUID, step int64) (bool, error)
	// UseRecoveryCode spends the unused code hashed as hash; false when
	// there is none (unknown or already used).
	UseRecoveryCode(ctx context.Context, userID uuid.UUID, hash []byte) (bool, error)
	// ReplaceRecoveryCodes voids every recovery code and stores the new
	// set; domain.ErrConflict when MFA is off.
	ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, codeHashes [][]byte) error
}

// TOTP generates secrets and checks codes (RFC 6238: SHA-1, 6 digits, 30 s
// steps; pquerna/otp in adapters/auth).
type TOTP interface {
	// Generate returns a new base32 secret and its otpauth:// URL.
	Generate(accountName string) (secret, url string, err error)
	// Match returns the earliest time step later than after, within one
	// step of at, whose code is code; false when there is none.
	Match(secret, code string, at time.Time, after int64) (step int64, ok bool)
}

// SecretSealer encrypts small per-user secrets with the user's data key
// (eventstore.Keyring), so destroying the key on erasure makes them
// unreadable everywhere at once, backups included.
type SecretSealer interface {
	Seal(ctx context.Context, userID, id uuid.UUID, typ string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, userID, id uuid.UUID, typ string, sealed []byte) ([]byte, error)
}

// TOTPEnrolment is a started enrolment: the secret to put into an
// authenticator app, also as an otpauth:// URL for a QR code.
type TOTPEnrolment struct {
	Secret string
	URL    string
}

// ConfirmTOTP turns MFA on with a code from the pending secret. The
// account's current password is asked again: an access token alone (15
// minutes, possibly stolen) must not be able to enrol another
// authenticator, which would end every session and hand the recovery codes
// to whoever holds the token.
type ConfirmTOTP struct {
	UserID   uuid.UUID
	Password string
	Code     string
	IP       string
}

// MFAChange re-authenticates a change to MFA (disable, new recovery codes)
// with the password and a second factor (a TOTP or a recovery code).
type MFAChange struct {
	UserID   uuid.UUID
	Password string
	Code     string
	IP       string
}

func (h *Handlers) mfaConfigured() error {
	if h.MFA == nil || h.TOTP == nil || h.Secrets == nil || len(h.RecoveryCodeKey) == 0 {
		return fmt.Errorf("mfa not configured: %w", domain.ErrUnavailable)
	}
	return nil
}

// StartTOTP creates a new TOTP secret for the caller, pending until
// ConfirmTOTP; a second call replaces a pending secret. domain.ErrConflict
// when MFA is already on (disable it first).
func (h *Handlers) StartTOTP(ctx context.Context, userID uuid.UUID, ip string) (TOTPEnrolment, error) {
	if err := h.mfaConfigured(); err != nil {
		return TOTPEnrolment{}, err
	}
	if st, err := h.MFA.TOTPState(ctx, userID); err == nil && st.Enabled {
		return TOTPEnrolment{}, fmt.Errorf("mfa is already on: %w", domain.ErrConflict)
	} else if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return TOTPEnrolment{}, err
	}
	// The label is the user id: the command side keeps no plaintext email.
	secret, url, err := h.TOTP.Generate(userID.String())
	if err != nil {
		return TOTPEnrolment{}, err
	}
	sealed, err := h.Secrets.Seal(ctx, userID, userID, totpSecretType, []byte(secret))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if err := h.MFA.StartTOTP(ctx, userID, sealed); err != nil {
		return TOTPEnrolment{}, err
	}
	h.audit(ctx, AuditEntry{Action: AuditMFAEnrolmentStarted, Actor: userID, Subject: userID, IP: ip})
	return TOTPEnrolment{Secret: secret, URL: url}, nil
}

// ConfirmTOTP re-checks the password, checks a code of the pending secret,
// turns MFA on, ends every session (the client logs in again, with a code)
// and returns the recovery codes, shown this once. A wrong or missing
// password is a *domain.ValidationError on /password (checked first, and
// audited); a wrong code or no pending enrolment is one on /code;
// domain.ErrConflict when MFA is on.
func (h *Handlers) ConfirmTOTP(ctx context.Context, cmd ConfirmTOTP) ([]string, error) {
	if err := h.mfaConfigured(); err != nil {
		return nil, err
	}
	if err := h.reauthenticate(ctx, cmd.UserID, cmd.Password, cmd.IP, "mfa enrolment"); err != nil {
		return nil, err
	}
	st, err := h.MFA.TOTPState(ctx, cmd.UserID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, codeProblem("no enrolment is pending: start one first")
	}
	if err != nil {
		return nil, err
	}
	if st.Enabled {
		return nil, fmt.Errorf("mfa is already on: %w", domain.ErrConflict)
	}
	secret, err := h.openSecret(ctx, cmd.UserID, st)
	if err != nil {
		return nil, err
	}
	step, ok := h.TOTP.Match(secret, cmd.Code, h.now(), st.LastStep)
	if !ok {
		return nil, codeProblem("does not match the pending secret")
	}
	codes, hashes, err := h.newRecoveryCodes(cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := h.MFA.EnableTOTP(ctx, cmd.UserID, st.Secret, step, hashes); err != nil {
		return nil, err
	}
	h.audit(ctx, AuditEntry{Action: AuditMFAEnabled, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return codes, nil
}

// DisableTOTP turns MFA off after re-checking the password (422 on
// /password) and a TOTP or recovery code (422 on /code), and ends every
// session. domain.ErrConflict when MFA is off.
func (h *Handlers) DisableTOTP(ctx context.Context, cmd MFAChange) error {
	if err := h.reauthenticateMFA(ctx, cmd); err != nil {
		return err
	}
	if err := h.MFA.DisableTOTP(ctx, cmd.UserID); err != nil {
		return err
	}
	h.audit(ctx, AuditEntry{Action: AuditMFADisabled, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return nil
}

// RenewRecoveryCodes replaces the recovery codes (the old ones stop
// working) after the same re-checks as DisableTOTP.
func (h *Handlers) RenewRecoveryCodes(ctx context.Context, cmd MFAChange) ([]string, error) {
	if err := h.reauthenticateMFA(ctx, cmd); err != nil {
		return nil, err
	}
	codes, hashes, err := h.newRecoveryCodes(cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := h.MFA.ReplaceRecoveryCodes(ctx, cmd.UserID, hashes); err != nil {
		return nil, err
	}
	h.audit(ctx, AuditEntry{Action: AuditMFARecoveryCodesRenewed, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return codes, nil
}

// reauthenticateMFA checks the password and a second factor of an account
// with MFA on. The caller is authenticated, so wrong answers are 422 on the
// field, not 401 (which would say the access token is bad).
func (h *Handlers) reauthenticateMFA(ctx context.Context, cmd MFAChange) error {
	if err := h.mfaConfigured(); err != nil {
		return err
	}
	if err := h.reauthenticate(ctx, cmd.UserID, cmd.Password, cmd.IP, "mfa change"); err != nil {
		return err
	}
	st, err := h.MFA.TOTPState(ctx, cmd.UserID)
	if errors.Is(err, domain.ErrNotFound) || err == nil && !st.Enabled {
		return fmt.Errorf("mfa is off: %w", domain.ErrConflict)
	}
	if err != nil {
		return err
	}
	ok, err := h.checkCode(ctx, cmd.UserID, st, cmd.Code, "", cmd.IP)
	if err != nil {
		return err
	}
	if !ok {
		return codeProblem("is not a current one-time code or an unused recovery code")
	}
	return nil
}

// reauthenticate checks that password is the current password of the
// authenticated user before a change a stolen access token must not be
// able to make. A wrong (or empty) password is a *domain.ValidationError
// on /password (422: the token is fine, so not 401) and is audited as a
// failed login, as for erasure, so guessing through a stolen token shows
// in the log.
func (h *Handlers) reauthenticate(ctx context.Context, userID uuid.UUID, password, ip, what string) error {
	acc, err := h.Accounts.ByID(ctx, userID)
	if errors.Is(err, domain.ErrNotFound) {
		return fmt.Errorf("account: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return err
	}
	if ok, _, err := h.Passwords.Verify(password, acc.PasswordHash); err != nil || !ok {
		h.audit(ctx, AuditEntry{Action: AuditLoginFailed, Subject: userID, IP: ip, Detail: map[string]string{"reason": "re-authentication for " + what + " failed"}})
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/password", Detail: "does not match the current password"}}}
	}
	return nil
}

// secondFactor decides the MFA part of a login whose password was right:
// accounts without MFA pass (false); with MFA the login needs a current,
// unused TOTP code or an unused recovery code (true), else
// ErrMFARequired or ErrInvalidSecondFactor.
func (h *Handlers) secondFactor(ctx context.Context, userID uuid.UUID, cmd Login) (bool, error) {
	if h.MFA == nil {
		return false, nil
	}
	st, err := h.MFA.TOTPState(ctx, userID)
	if errors.Is(err, domain.ErrNotFound) || err == nil && !st.Enabled {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := h.mfaConfigured(); err != nil {
		return false, err
	}
	if cmd.OTP == "" && cmd.RecoveryCode == "" {
		return false, ErrMFARequired
	}
	ok, err := h.checkCode(ctx, userID, st, cmd.OTP, cmd.RecoveryCode, cmd.IP)
	if err != nil {
		return false, err
	}
	if !ok {
		h.audit(ctx, AuditEntry{Action: AuditLoginFailed, Subject: userID, IP: cmd.IP, Detail: map[string]string{"reason": "wrong_second_factor"}})
		return false, ErrInvalidSecondFactor
	}
	return true, nil
}

// checkCode accepts otp as a TOTP code (spending its time step) or, when
// it is not six digits, as a recovery code; recovery (from the login's
// own field) is always a recovery code. A spent recovery code is audited.
func (h *Handlers) checkCode(ctx context.Context, userID uuid.UUID, st TOTPState, otp, recovery, ip string) (bool, error) {
	if otp != "" && isTOTPCode(otp) {
		secret, err := h.openSecret(ctx, userID, st)
		if err != nil {
			return false, err
		}
		step, ok := h.TOTP.Match(secret, otp, h.now(), st.LastStep)
		if !ok {
			return false, nil
		}
		return h.MFA.AcceptStep(ctx, userID, step)
	}
	if recovery == "" {
		recovery = otp
	}
	norm, ok := normalizeRecoveryCode(recovery)
	if !ok {
		return false, nil
	}
	used, err := h.MFA.UseRecoveryCode(ctx, userID, h.recoveryCodeHash(userID, norm))
	if err != nil || !used {
		return false, err
	}
	h.audit(ctx, AuditEntry{Action: AuditMFARecoveryCodeUsed, Actor: userID, Subject: userID, IP: ip})
	return true, nil
}

func (h *Handlers) openSecret(ctx context.Context, userID uuid.UUID, st TOTPState) (string, error) {
	pt, err := h.Secrets.Open(ctx, userID, userID, totpSecretType, st.Secret)
	if err != nil {
		return "", fmt.Errorf("open totp secret: %w", err)
	}
	return string(pt), nil
}

// newRecoveryCodes returns a fresh set as shown to the user and as stored.
func (h *Handlers) newRecoveryCodes(userID uuid.UUID) ([]string, [][]byte, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	b := make([]byte, recoveryCodeChars)
	for i := range codes {
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("recovery code: %w", err)
		}
		for j := range b {
			b[j] = recoveryAlphabet[b[j]&31] // 256 is a multiple of 32: no bias
		}
		norm := string(b)
		codes[i] = norm[:recoveryCodeChars/2] + "-" + norm[recoveryCodeChars/2:]
		hashes[i] = h.recoveryCodeHash(userID, norm)
	}
	return codes, hashes, nil
}

// recoveryCodeHash is HMAC-SHA256 under RecoveryCodeKey of the user id and
// the normalised code. A code has 50 bits: too few to store under a plain
// fast hash (a stolen table could be brute-forced offline), but with a key
// that lives outside the database a table dump alone reveals nothing, and
// a lookup stays one indexed equality (Argon2id would cost 10 slow hashes
// per attempt, one per stored code, on a rate-limited but public route).
func (h *Handlers) recoveryCodeHash(userID uuid.UUID, norm string) []byte {
	m := hmac.New(sha256.New, h.RecoveryCodeKey)
	m.Write(userID[:])
	m.Write([]byte(norm))
	return m.Sum(nil)
}

// normalizeRecoveryCode accepts a code with or without its hyphen, any
// case, surrounding spaces.
func normalizeRecoveryCode(s string) (string, bool) {
	if len(s) > maxCodeLen {
		return "", false
	}
	s = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
	if len(s) != recoveryCodeChars {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(recoveryAlphabet, rune(s[i])) {
			return "", false
		}
	}
	return s, true
}

func isTOTPCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func codeProblem(detail string) error {
	return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/code", Detail: detail}}}
}
