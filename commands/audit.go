package commands

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// AuditEntry is one security-relevant fact: a login, a failed login, a
// refresh-token reuse, a role change, an erasure, or someone reading another
// user's personal data. Entries go to an append-only, hash-chained log that
// the application cannot rewrite, so they hold up when an incident is
// investigated. Detail must never carry secrets, tokens or health data.
type AuditEntry struct {
	// Action is a stable dotted name such as "auth.login_failed".
	Action string
	// Actor is who acted (uuid.Nil when unknown, e.g. a failed login).
	Actor uuid.UUID
	// Subject is whose account or data the action concerned.
	Subject uuid.UUID
	// IP is the client address as the HTTP layer determined it.
	IP string
	// At is when it happened; zero means now.
	At time.Time
	// Detail holds short non-secret facts (reason, route, family id).
	Detail map[string]string
}

// Audit records AuditEntry values. It is a port so commands state what
// happened while the storage (hash chain, database role that may only
// insert) stays in an adapter.
type Audit interface {
	// Record appends one entry; an error means it was not stored.
	Record(ctx context.Context, e AuditEntry) error
}

// AuditRecord is one stored audit entry with its place in the chain.
type AuditRecord struct {
	AuditEntry
	// Seq is the entry's position in the chain (1, 2, ...; no gaps).
	Seq int64
	// PrevHash and Hash link the chain: Hash = SHA-256(PrevHash ||
	// canonical JSON of the entry), PrevHash = the previous entry's Hash.
	PrevHash, Hash []byte
}

// AuditBreak describes the first place where the audit chain does not
// hold (see the adapter's Verify).
type AuditBreak struct {
	// Seq is the first entry that fails the check.
	Seq int64
	// Reason says what failed: a gap in the sequence, a previous-hash link
	// that does not match, or a hash that does not match the entry.
	Reason string
}

// AuditFilter selects audit entries; zero fields do not filter. Entries
// come in chain order, After is the cursor (the last Seq already seen).
type AuditFilter struct {
	Action         string
	Actor, Subject uuid.UUID
	From, To       time.Time
	After          int64
	Limit          int
}

// AuditTrail reads the audit log for operators. It is a port so the
// admin API lists entries without knowing how the chain is stored. It also
// records: entries carry other users' IP addresses and ids, so reading
// them is itself a read of personal data by someone else.
type AuditTrail interface {
	Audit
	// List returns the entries matching f in chain order.
	List(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
}

// Well-known audit actions. Keeping them as constants lets the audit
// query filter on values that cannot drift between writers.
const (
	AuditLogin          = "auth.login"
	AuditLoginFailed    = "auth.login_failed"
	AuditRefreshReuse   = "auth.refresh_reuse"
	AuditLogoutAll      = "auth.logout_all"
	AuditPasswordChange = "auth.password_changed"
	AuditRoleChange     = "account.role_changed"
	AuditErasure        = "account.erasure"
	AuditPIIRead        = "pii.read"

	AuditMFAEnrolmentStarted     = "auth.mfa_enrolment_started"
	AuditMFAEnabled              = "auth.mfa_enabled"
	AuditMFADisabled             = "auth.mfa_disabled"
	AuditMFARecoveryCodeUsed     = "auth.mfa_recovery_code_used"
	AuditMFARecoveryCodesRenewed = "auth.mfa_recovery_codes_renewed"
)
