package commands

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// Account is the command-side record of a user (see Accounts).
type Account struct {
	UserID       uuid.UUID
	EmailKey     []byte
	PasswordHash string
	Role         string
	Active       bool
}

// Accounts is the synchronous, cross-user state commands need: the email
// claim and credentials. Invariants across users have no common order in
// the log, so they are decided here before the event is appended.
type Accounts interface {
	// Claim returns domain.ErrConflict when the email key is taken. A
	// pending claim older than the takeover window (an append whose outcome
	// stayed unknown and never landed) can be claimed again.
	Claim(ctx context.Context, a Account) error
	Complete(ctx context.Context, userID uuid.UUID) error
	Release(ctx context.Context, userID uuid.UUID) error
	// ByEmailKey and ByID return domain.ErrNotFound for unknown or pending accounts.
	ByEmailKey(ctx context.Context, key []byte) (Account, error)
	ByID(ctx context.Context, id uuid.UUID) (Account, error)
	// UpdatePasswordHash replaces the hash only while it is still old, so a
	// rehash at login can never undo a concurrent password change or reset.
	UpdatePasswordHash(ctx context.Context, id uuid.UUID, old, hash string) error
}

// PasswordHasher hashes and checks passwords (Argon2id in adapters/auth).
type PasswordHasher interface {
	Hash(password string) (string, error)
	Verify(password, phc string) (ok bool, needsRehash bool, err error)
	DummyVerify(password string)
}

// TokenIssuer issues access tokens. sessionID becomes the token's sid, so
// revoking the session revokes the token; mfa says the session was opened
// with a second factor (the token's amr claim), which admin routes require.
type TokenIssuer interface {
	Issue(userID uuid.UUID, role string, sessionID uuid.UUID, mfa bool) (string, time.Duration, error)
}

// Dedup remembers the tokens of accepted deliveries so a redelivery answers
// with the original token without appending again. It is an optimisation:
// read models are idempotent by natural keys, so a Dedup that forgets (or a
// Redis outage) costs a harmless duplicate record, never a double count.
type Dedup interface {
	Lookup(ctx context.Context, eventID uuid.UUID) (eventstore.Token, bool)
	Remember(ctx context.Context, eventID uuid.UUID, t eventstore.Token)
}

// Handlers runs BioSync's commands.
type Handlers struct {
	Log       eventstore.Appender
	Accounts  Accounts
	Passwords PasswordHasher
	Tokens    TokenIssuer
	Dedup     Dedup // optional
	// Versions is the compare-and-set of editable documents (settings,
	// notification preferences); required by ChangeProfile and
	// ChangeNotifications.
	Versions DocumentVersions
	// Sessions keeps refresh-token families; required by Login and the
	// session commands.
	Sessions SessionStore
	// RefreshTTL is the absolute lifetime of a session; zero means
	// DefaultRefreshTTL.
	RefreshTTL time.Duration
	// Audit records security events; nil means auditing is not configured.
	Audit Audit
	// EmailIndexKey keys the hash under which email addresses are claimed
	// (no plaintext address in the claim table).
	EmailIndexKey []byte
	// CorrelationID extracts the request's correlation id from ctx.
	CorrelationID func(ctx context.Context) string
	// CheckPassword enforces the password policy.
	CheckPassword func(string) error
	Now           func() time.Time
	Logger        *slog.Logger
	// Mail sends account mail (verification, reset, notices); nil sends none.
	Mail Mailer
	// EmailTokens keeps the single-use tokens mailed to users; required
	// for verification and reset.
	EmailTokens EmailTokens
	// Erasure keeps deletion requests; nil answers erasure commands 503.
	Erasure ErasureStore
	// ErasureGracePeriod is how long a deletion request waits
	// (BIOSYNC_ERASURE_GRACE_PERIOD); zero means DefaultErasureGracePeriod.
	ErasureGracePeriod time.Duration
	// MFA keeps TOTP secrets, accepted time steps and recovery codes; nil
	// answers the MFA commands 503 and logs in without a second factor.
	MFA MFAStore
	// TOTP generates and checks TOTP codes (adapters/auth); required with MFA.
	TOTP TOTP
	// Secrets seals TOTP secrets at rest with the user's data key
	// (eventstore.Keyring); required with MFA.
	Secrets SecretSealer
	// RecoveryCodeKey keys the HMAC under which recovery codes are stored;
	// required with MFA.
	RecoveryCodeKey []byte
	// AppURL is the frontend's base URL for links in mail
	// (BIOSYNC_APP_URL), e.g. https://app.example.com.
	AppURL string

	// known caches user ids whose account is active, so a push does not
	// cost a PostgreSQL round trip. Accounts are never deactivated yet;
	// erasure (a later issue) must call Forget.
	known sync.Map
}

// Forget drops a user from the active-account cache (after erasure).
func (h *Handlers) Forget(userID uuid.UUID) { h.known.Delete(userID) }

func (h *Handlers) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// EmailKey is the keyed hash (HMAC-SHA256) of a normalized address, the
// key of the email claim (operators' tools look accounts up by it).
func (h *Handlers) EmailKey(email string) []byte { return h.emailKey(email) }

func (h *Handlers) emailKey(email string) []byte {
	m := hmac.New(sha256.New, h.EmailIndexKey)
	m.Write([]byte(identity.NormalizeEmail(email)))
	return m.Sum(nil)
}

// newEvent fills the envelope: correlation id from the request, causation
// from the request too (commands are caused by requests), and the W3C trace
// context so the trace continues into projectors.
func (h *Handlers) newEvent(ctx context.Context, id, userID uuid.UUID, typ string, body any) (eventstore.Event, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return eventstore.Event{}, err
	}
	now := h.now().UTC()
	e := eventstore.Event{ID: id, Type: typ, SchemaVersion: 1, UserID: userID, OccurredAt: now, RecordedAt: now, Payload: payload}
	if h.CorrelationID != nil {
		e.CorrelationID = logSafeCorrelation(h.CorrelationID(ctx))
		e.CausationID = e.CorrelationID
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	// Only traceparent (ids and flags): tracestate is free text a caller
	// can set, and the envelope is unencrypted and immutable.
	e.TraceParent = carrier["traceparent"]
	return e, nil
}

// logSafeCorrelation keeps a request id that is a UUID (what the server
// generates) and replaces any other caller-chosen id with its UUIDv5: the
// envelope is not encrypted and the log is immutable, so a caller's string
// (which could carry a name) must not outlive an erasure there. The same
// caller id always maps to the same UUID, so correlation still works.
func logSafeCorrelation(id string) string {
	if id == "" {
		return ""
	}
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u.String()
	}
	return eventstore.DeterministicID("correlation", id).String()
}

// Register creates an account: validate, claim the email synchronously,
// append user.registered, then mark the claim complete. If the append fails
// the claim is released and the caller gets domain.ErrUnavailable.
func (h *Handlers) Register(ctx context.Context, cmd RegisterUser) (Registered, error) {
	v := &domain.ValidationError{}
	identity.ValidateRegistration(cmd.Email, cmd.Timezone, v)
	if h.CheckPassword != nil {
		var pv *domain.ValidationError
		if err := h.CheckPassword(cmd.Password); errors.As(err, &pv) {
			v.Problems = append(v.Problems, pv.Problems...)
		} else if err != nil {
			v.Add("/password", "%v", err)
		}
	}
	if err := v.Err(); err != nil {
		return Registered{}, err
	}
	hash, err := h.Passwords.Hash(cmd.Password)
	if err != nil {
		return Registered{}, err
	}
	email := identity.NormalizeEmail(cmd.Email)
	userID := uuid.New()
	if err := h.Accounts.Claim(ctx, Account{UserID: userID, EmailKey: h.emailKey(email), PasswordHash: hash}); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			h.noticeRegistrationAttempt(email)
		}
		return Registered{}, err
	}
	e, err := h.newEvent(ctx, uuid.New(), userID, identity.EventRegistered, identity.Registered{Email: email, Timezone: cmd.Timezone, RegisteredAt: h.now().UTC()})
	if err != nil {
		return Registered{}, err
	}
	pos, err := h.Log.Append(ctx, e)
	// Settle the claim with a context that outlives the request.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	switch {
	case errors.Is(err, eventstore.ErrNotAppended):
		// Certainly not in the log: free the address again.
		if rerr := h.Accounts.Release(sctx, userID); rerr != nil && h.Logger != nil {
			h.Logger.Error("could not release email claim", "user_id", userID, "err", rerr)
		}
		return Registered{}, err
	case err != nil:
		// Outcome unknown: the record may still land. The claim stays
		// pending; the users projector activates it if the event arrives,
		// and a pending claim older than the takeover window can be claimed
		// again (see Accounts.Claim).
		return Registered{}, err
	}
	for attempt := 0; ; attempt++ {
		cerr := h.Accounts.Complete(sctx, userID)
		if cerr == nil {
			break
		}
		if attempt == 2 {
			// The event is in the log: the users projector will activate
			// the account; the caller may retry login shortly.
			return Registered{}, cerr
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := h.sendVerification(sctx, userID, email); err != nil && h.Logger != nil {
		// The account exists; the user can ask for a new link later.
		h.Logger.Error("verification mail not prepared", "user_id", userID, "err", err)
	}
	return Registered{UserID: userID, Email: email, Timezone: cmd.Timezone, Token: eventstore.Token{pos}}, nil
}

// Login checks credentials against the command-side account (so it works
// right after registration), starts a session and issues its token pair.
// Unknown addresses take as long as wrong passwords and get the same error.
func (h *Handlers) Login(ctx context.Context, cmd Login) (Session, error) {
	acc, err := h.Accounts.ByEmailKey(ctx, h.emailKey(cmd.Email))
	if errors.Is(err, domain.ErrNotFound) {
		h.Passwords.DummyVerify(cmd.Password)
		h.audit(ctx, AuditEntry{Action: AuditLoginFailed, IP: cmd.IP, Detail: map[string]string{"reason": "unknown_account"}})
		return Session{}, fmt.Errorf("invalid email or password: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return Session{}, err
	}
	ok, rehash, err := h.Passwords.Verify(cmd.Password, acc.PasswordHash)
	if err != nil || !ok {
		h.audit(ctx, AuditEntry{Action: AuditLoginFailed, Subject: acc.UserID, IP: cmd.IP, Detail: map[string]string{"reason": "wrong_password"}})
		return Session{}, fmt.Errorf("invalid email or password: %w", domain.ErrUnauthorized)
	}
	if rehash {
		if nh, err := h.Passwords.Hash(cmd.Password); err == nil {
			if h.Accounts.UpdatePasswordHash(ctx, acc.UserID, acc.PasswordHash, nh) == nil {
				acc.PasswordHash = nh
			}
		}
	}
	mfa, err := h.secondFactor(ctx, acc.UserID, cmd)
	if err != nil {
		return Session{}, err
	}
	s, err := h.startSession(ctx, acc, cmd.UserAgent, cmd.IP, mfa)
	if err != nil {
		return Session{}, err
	}
	h.audit(ctx, AuditEntry{Action: AuditLogin, Actor: acc.UserID, Subject: acc.UserID, IP: cmd.IP,
		Detail: map[string]string{"session_id": s.SessionID.String()}})
	return s, nil
}

// Push appends one samples.pushed event. The event id derives from the
// delivery identity (webhook-id, or the caller's Idempotency-Key scoped to
// the user), so redeliveries are recognised; read models are idempotent by
// natural keys in any case.
func (h *Handlers) Push(ctx context.Context, cmd PushSamples) (Accepted, error) {
	userID := cmd.UserID
	if userID == uuid.Nil {
		id, err := uuid.Parse(cmd.Batch.UserID)
		if err != nil {
			return Accepted{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/user_id", Detail: "must be a UUID"}}}
		}
		userID = id
	}
	if _, ok := h.known.Load(userID); !ok {
		if _, err := h.Accounts.ByID(ctx, userID); errors.Is(err, domain.ErrNotFound) {
			return Accepted{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/user_id", Detail: "no such user"}}}
		} else if err != nil {
			return Accepted{}, err
		}
		h.known.Store(userID, struct{}{})
	}
	var id uuid.UUID
	switch {
	case cmd.DeliveryID != "" && cmd.Channel == "webhook":
		// Scoped to the user: a delivery id is unique per sender, not
		// across senders, and must never collapse two users' data.
		id = eventstore.DeterministicID("push.webhook", userID.String(), cmd.DeliveryID)
	case cmd.DeliveryID != "":
		id = eventstore.DeterministicID("push.app", userID.String(), cmd.DeliveryID)
	default:
		id = uuid.New()
	}
	if h.Dedup != nil && cmd.DeliveryID != "" {
		if t, ok := h.Dedup.Lookup(ctx, id); ok {
			return Accepted{EventID: id, Token: t, Duplicate: true}, nil
		}
	}
	batch := cmd.Batch
	batch.UserID = userID.String()
	e, err := h.newEvent(ctx, id, userID, ingest.EventPushed, ingest.Pushed{DeliveryID: cmd.DeliveryID, Channel: cmd.Channel, ReceivedAt: h.now().UTC(), Batch: batch})
	if err != nil {
		return Accepted{}, err
	}
	pos, err := h.Log.Append(ctx, e)
	if err != nil {
		return Accepted{}, err
	}
	t := eventstore.Token{pos}
	if h.Dedup != nil && cmd.DeliveryID != "" {
		h.Dedup.Remember(ctx, id, t)
	}
	return Accepted{EventID: id, Token: t}, nil
}
