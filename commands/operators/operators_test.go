package operators_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/operators"
	"github.com/biosync/biosync/domain"
)

var index = commands.EmailIndex("0123456789abcdef0123456789abcdef")

// world is a set of fakes that record the calls the use cases make, in
// order, so a test reads as the sequence the operator's command caused.
type world struct {
	user  uuid.UUID
	calls []string
	fail  map[string]error // by call name
	audit []commands.AuditEntry

	chain   []commands.AuditRecord
	verify  int64
	broken  *commands.AuditBreak
	filters []commands.AuditFilter
}

func newWorld() *world { return &world{user: uuid.New(), fail: map[string]error{}} }

func (w *world) call(name string) error { w.calls = append(w.calls, name); return w.fail[name] }

func (w *world) ByEmailKey(_ context.Context, key []byte) (commands.Account, error) {
	if err := w.call("ByEmailKey"); err != nil {
		return commands.Account{}, err
	}
	if string(key) != string(index.Key("Ada@Example.org")) {
		return commands.Account{}, domain.ErrNotFound
	}
	return commands.Account{UserID: w.user, Active: true}, nil
}

func (w *world) SetRole(_ context.Context, id uuid.UUID, role string) error {
	if id != w.user {
		return errors.New("SetRole for another user")
	}
	return w.call("SetRole " + role)
}

func (w *world) ResetTOTP(_ context.Context, id uuid.UUID) error {
	if id != w.user {
		return errors.New("ResetTOTP for another user")
	}
	return w.call("ResetTOTP")
}

func (w *world) RevokeAll(_ context.Context, id uuid.UUID, reason string) error {
	if id != w.user {
		return errors.New("RevokeAll for another user")
	}
	return w.call("RevokeAll " + reason)
}

func (w *world) Record(_ context.Context, e commands.AuditEntry) error {
	if err := w.call("Record " + e.Action); err != nil {
		return err
	}
	w.audit = append(w.audit, e)
	return nil
}

func (w *world) List(_ context.Context, f commands.AuditFilter) ([]commands.AuditRecord, error) {
	w.filters = append(w.filters, f)
	if err := w.call("List"); err != nil {
		return nil, err
	}
	var out []commands.AuditRecord
	for _, r := range w.chain {
		if r.Seq > f.After && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (w *world) Verify(context.Context) (int64, *commands.AuditBreak, error) {
	return w.verify, w.broken, w.call("Verify")
}

func (w *world) service(t *testing.T) *operators.Service {
	t.Helper()
	s, err := operators.New(operators.Deps{EmailIndex: index, Accounts: w, MFA: w, Sessions: w, Audit: w})
	require.NoError(t, err)
	return s
}

func TestGrantAdminSetsTheRoleAndRecordsItWithoutActor(t *testing.T) {
	w := newWorld()
	require.NoError(t, w.service(t).GrantAdmin(context.Background(), "  ada@EXAMPLE.org "))
	assert.Equal(t, []string{"ByEmailKey", "SetRole admin", "Record " + commands.AuditRoleChange}, w.calls)
	require.Len(t, w.audit, 1)
	assert.Equal(t, w.user, w.audit[0].Subject)
	assert.Equal(t, uuid.Nil, w.audit[0].Actor, "the operator at the console has no account")
	assert.Equal(t, map[string]string{"role": "admin", "via": "biosync users grant-admin"}, w.audit[0].Detail)
}

func TestResetMFAResetsThenEndsSessionsThenRecords(t *testing.T) {
	w := newWorld()
	require.NoError(t, w.service(t).ResetMFA(context.Background(), "ada@example.org"))
	assert.Equal(t, []string{"ByEmailKey", "ResetTOTP", "RevokeAll " + commands.RevokeMFAChange, "Record " + commands.AuditMFADisabled}, w.calls)
	require.Len(t, w.audit, 1)
	assert.Equal(t, w.user, w.audit[0].Subject)
	assert.Equal(t, map[string]string{"via": "biosync users reset-mfa"}, w.audit[0].Detail)
}

func TestAnUnknownAddressChangesNothing(t *testing.T) {
	for name, op := range map[string]func(*operators.Service) error{
		"grant-admin": func(s *operators.Service) error { return s.GrantAdmin(context.Background(), "eve@example.org") },
		"reset-mfa":   func(s *operators.Service) error { return s.ResetMFA(context.Background(), "eve@example.org") },
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld()
			err := op(w.service(t))
			require.ErrorIs(t, err, operators.ErrNoAccount)
			assert.EqualError(t, err, "no active account for that email address")
			assert.Equal(t, []string{"ByEmailKey"}, w.calls)
		})
	}
}

// An error after the change says what happened and what did not, so the
// operator does not repeat a change that stands.
func TestFailuresAfterTheChangeSayWhatStands(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name, fail, want string
		op               func(*operators.Service) error
	}{
		{"grant-admin, audit", "Record " + commands.AuditRoleChange, "admin role granted, but the audit entry was not written: boom",
			func(s *operators.Service) error { return s.GrantAdmin(context.Background(), "ada@example.org") }},
		{"reset-mfa, sessions", "RevokeAll " + commands.RevokeMFAChange, "MFA reset, but sessions were not ended: boom",
			func(s *operators.Service) error { return s.ResetMFA(context.Background(), "ada@example.org") }},
		{"reset-mfa, audit", "Record " + commands.AuditMFADisabled, "MFA reset, but the audit entry was not written: boom",
			func(s *operators.Service) error { return s.ResetMFA(context.Background(), "ada@example.org") }},
		{"grant-admin, role", "SetRole admin", "boom",
			func(s *operators.Service) error { return s.GrantAdmin(context.Background(), "ada@example.org") }},
		{"reset-mfa, reset", "ResetTOTP", "boom",
			func(s *operators.Service) error { return s.ResetMFA(context.Background(), "ada@example.org") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			w.fail[c.fail] = boom
			err := c.op(w.service(t))
			require.ErrorIs(t, err, boom)
			assert.EqualError(t, err, c.want)
			assert.Equal(t, c.fail, w.calls[len(w.calls)-1], "nothing runs after the failing step")
		})
	}
}

func TestVerifyAuditReturnsTheHeadOfAnIntactChain(t *testing.T) {
	w := newWorld()
	w.chain = []commands.AuditRecord{{Seq: 1, Hash: []byte{1}}, {Seq: 2, Hash: []byte{2}}, {Seq: 3, Hash: []byte{3}}}
	w.verify = 3
	got, err := w.service(t).VerifyAudit(context.Background())
	require.NoError(t, err)
	assert.Equal(t, operators.AuditCheck{Entries: 3, Head: []byte{3}}, got)
	assert.Equal(t, []commands.AuditFilter{{After: 2, Limit: 1}}, w.filters)
}

func TestVerifyAuditOfAnEmptyChainHasNoHead(t *testing.T) {
	w := newWorld()
	got, err := w.service(t).VerifyAudit(context.Background())
	require.NoError(t, err)
	assert.Equal(t, operators.AuditCheck{}, got)
	assert.Equal(t, []string{"Verify"}, w.calls)
}

func TestVerifyAuditReportsABreakWithoutLookingForAHead(t *testing.T) {
	w := newWorld()
	w.verify, w.broken = 4, &commands.AuditBreak{Seq: 5, Reason: "hash does not match the entry's contents"}
	got, err := w.service(t).VerifyAudit(context.Background())
	require.NoError(t, err)
	assert.Equal(t, operators.AuditCheck{Entries: 4, Break: w.broken}, got)
	assert.Equal(t, []string{"Verify"}, w.calls)
}

func TestListAuditPassesTheFilterThrough(t *testing.T) {
	w := newWorld()
	w.chain = []commands.AuditRecord{{Seq: 1}, {Seq: 2}}
	f := commands.AuditFilter{Action: commands.AuditLogin, After: 1, Limit: 10}
	got, err := w.service(t).ListAudit(context.Background(), f)
	require.NoError(t, err)
	assert.Equal(t, []commands.AuditRecord{{Seq: 2}}, got)
	assert.Equal(t, []commands.AuditFilter{f}, w.filters)
}

func TestNewNamesAMissingDependency(t *testing.T) {
	w := newWorld()
	_, err := operators.New(operators.Deps{EmailIndex: index, Accounts: w, MFA: w, Audit: w})
	assert.EqualError(t, err, "operators: Sessions is required")
	_, err = operators.New(operators.Deps{Accounts: w, MFA: w, Sessions: w, Audit: w})
	assert.EqualError(t, err, "operators: EmailIndex is required")
}
