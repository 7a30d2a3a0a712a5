package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
)

// TestAdminReadsTheAuditLogPageByPage serves the real audit log (PostgreSQL)
// to an administrator: filters, cursor pages and the chain hashes.
func TestAdminReadsTheAuditLogPageByPage(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	require.NoError(t, postgres.Migrate(ctx, dsn))
	pool, err := postgres.Open(ctx, dsn, 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	log := postgres.NewAuditLog(pool)
	for i := range 5 {
		require.NoError(t, log.Record(ctx, commands.AuditEntry{Action: commands.AuditLoginFailed, Subject: alice, IP: fmt.Sprintf("203.0.113.%d", i), Detail: map[string]string{"reason": "wrong password"}}))
		require.NoError(t, log.Record(ctx, commands.AuditEntry{Action: commands.AuditLogin, Actor: bob, Subject: bob}))
	}
	h := newHarness(t, func(_ *Config, d *Deps) { d.Admin.Audit = log })

	page := func(target string) gen.AuditList {
		t.Helper()
		rec := h.do(req(http.MethodGet, target, nil, bearer(rootToken)...))
		require.Falsef(t, rec.Code != http.StatusOK, "GET %s = %d: %s", target, rec.Code, rec.Body)
		var l gen.AuditList
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &l))
		return l
	}
	first := page("/v1/admin/audit?action=auth.login_failed&subject=" + alice.String() + "&limit=3")
	require.Falsef(t, len(first.Entries) != 3 || first.NextAfter == nil, "first page: %d entries, next %v; want 3 and a cursor", len(first.Entries), first.NextAfter)
	rest := page(fmt.Sprintf("/v1/admin/audit?action=auth.login_failed&subject=%s&limit=3&after=%d", alice, *first.NextAfter))
	require.Falsef(t, len(rest.Entries) != 2 || rest.NextAfter != nil, "second page: %d entries, next %v; want the last 2 and no cursor", len(rest.Entries), rest.NextAfter)
	for _, e := range append(first.Entries, rest.Entries...) {
		assert.Falsef(t, e.Action != commands.AuditLoginFailed || e.Subject == nil || *e.Subject != alice || e.Actor != nil || len(e.Hash) != 64, "entry %d = %+v; want alice's failed login without actor, with a hex SHA-256", e.Seq, e)
	}
	byBob := page("/v1/admin/audit?actor=" + bob.String())
	assert.Falsef(t, len(byBob.Entries) != 5 || byBob.Entries[1].PrevHash == byBob.Entries[0].PrevHash, "bob's logins: %+v", byBob.Entries)
	if got := page("/v1/admin/audit?subject=" + uuid.NewString()); len(got.Entries) != 0 {
		assert.Fail(t, fmt.Sprintf("a stranger has %d entries", len(got.Entries)))
	}
	problemOf(t, h.do(req(http.MethodGet, "/v1/admin/audit?limit=5000", nil, bearer(rootToken)...)), 422, "validation")

	// Every read above was itself audited, naming the administrator and
	// whose entries were read.
	reads := page("/v1/admin/audit?action=pii.read&actor=" + root.String())
	require.Falsef(t, len(reads.Entries) != 4, "audited reads of the audit log = %d, want 4: %+v", len(reads.Entries), reads.Entries)
	if e := reads.Entries[0]; e.Subject == nil || *e.Subject != alice || e.Detail["route"] != "GET /v1/admin/audit" {
		assert.Fail(t, fmt.Sprintf("first audited read = %+v; want alice as subject and the route", e))
	}
}
