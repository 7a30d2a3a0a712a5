package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
)

func TestConcurrentAuditEntriesFormOneVerifiableChain(t *testing.T) {
	ctx := context.Background()
	log := postgres.NewAuditLog(migrated(t))
	alice, admin := uuid.New(), uuid.New()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			e := commands.AuditEntry{Action: commands.AuditLoginFailed, Subject: alice, IP: fmt.Sprintf("203.0.113.%d", i), Detail: map[string]string{"reason": "wrong password"}}
			if i%5 == 0 {
				e = commands.AuditEntry{Action: commands.AuditPIIRead, Actor: admin, Subject: alice, Detail: map[string]string{"route": "GET /v1/admin/users/{id}"}}
			}
			assert.NoError(t, log.Record(ctx, e))
		})
	}
	wg.Wait()
	n, brk, err := log.Verify(ctx)
	require.NoError(t, err, "Verify = %d entries, break %+v, err %v; want 20 entries, intact", n, brk, err)
	require.Nil(t, brk, "Verify = %d entries, break %+v, err %v; want 20 entries, intact", n, brk, err)
	require.EqualValues(t, 20, n, "Verify = %d entries, break %+v, err %v; want 20 entries, intact", n, brk, err)
	reads, err := log.List(ctx, postgres.AuditFilter{Actor: admin})
	require.NoError(t, err)
	require.Len(t, reads, 4, "entries by the admin = %d, want 4", len(reads))
	for _, r := range reads {
		assert.Equal(t, commands.AuditPIIRead, r.Action, "entry %d: want a PII read", r.Seq)
		assert.Equal(t, alice, r.Subject, "entry %d: want alice's data read", r.Seq)
		assert.NotEmpty(t, r.Detail["route"], "entry %d: want the route", r.Seq)
	}
	page, err := log.List(ctx, postgres.AuditFilter{Action: commands.AuditLoginFailed, After: reads[1].Seq, Limit: 3})
	require.NoError(t, err)
	if assert.Len(t, page, 3, "a page of 3 failed logins after entry %d", reads[1].Seq) {
		assert.Greater(t, page[0].Seq, reads[1].Seq, "the page starts after the cursor")
	}
}

func TestNobodyRewritesTheAuditLogQuietly(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	log := postgres.NewAuditLog(pool)
	for i := range 5 {
		require.NoError(t, log.Record(ctx, commands.AuditEntry{Action: commands.AuditLogin, Subject: uuid.New(), IP: fmt.Sprintf("198.51.100.%d", i)}))
	}
	// Even the table owner is refused by the triggers.
	for _, stmt := range []string{`UPDATE audit_log SET ip = '10.0.0.1' WHERE seq = 3`, `DELETE FROM audit_log WHERE seq = 5`, `TRUNCATE audit_log`} {
		_, err := pool.Exec(ctx, stmt)
		assert.True(t, isPGCode(err, "42501"), "owner ran %q: err = %v, want it refused (42501)", stmt, err)
	}
	// An operator who disables the triggers on purpose is caught by the chain.
	tamper := func(stmt string) {
		t.Helper()
		_, err := pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER; `+stmt+`; ALTER TABLE audit_log ENABLE TRIGGER USER`)
		require.NoError(t, err)
	}
	tamper(`UPDATE audit_log SET ip = '10.0.0.1' WHERE seq = 3`)
	_, brk, err := log.Verify(ctx)
	require.NoError(t, err, "after rewriting entry 3 Verify says break %+v, err %v; want entry 3's contents", brk, err)
	require.NotNil(t, brk, "after rewriting entry 3 Verify says break %+v, err %v; want entry 3's contents", brk, err)
	require.EqualValues(t, 3, brk.Seq, "after rewriting entry 3 Verify says break %+v, err %v; want entry 3's contents", brk, err)
	require.Contains(t, brk.Reason, "contents", "after rewriting entry 3 Verify says break %+v, err %v; want entry 3's contents", brk, err)
	tamper(`DELETE FROM audit_log WHERE seq = 3`)
	_, brk, err = log.Verify(ctx)
	require.NoError(t, err, "after deleting entry 3 Verify says break %+v, err %v; want entry 3 missing", brk, err)
	require.NotNil(t, brk, "after deleting entry 3 Verify says break %+v, err %v; want entry 3 missing", brk, err)
	require.EqualValues(t, 3, brk.Seq, "after deleting entry 3 Verify says break %+v, err %v; want entry 3 missing", brk, err)
	require.Contains(t, brk.Reason, "missing", "after deleting entry 3 Verify says break %+v, err %v; want entry 3 missing", brk, err)
}

// TestTheApplicationRoleMayOnlyAppendToTheAuditLog connects as a role set up
// the way docs/operations.md tells operators to run the server (LOGIN, not
// superuser, not the owner, SELECT and INSERT on audit_log) and shows it
// can append and read but never change or remove an entry.
func TestTheApplicationRoleMayOnlyAppendToTheAuditLog(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	require.NoError(t, postgres.Migrate(ctx, dsn))
	role := testbackend.UniqueName(t, "biosync_app_")
	owner, err := postgres.Open(ctx, dsn, 2)
	require.NoError(t, err)
	defer owner.Close()
	r := pgx.Identifier{role}.Sanitize()
	_, err = owner.Exec(ctx, `CREATE ROLE `+r+` LOGIN NOSUPERUSER; GRANT SELECT, INSERT ON audit_log TO `+r)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = owner.Exec(context.Background(), `DROP OWNED BY `+r+`; DROP ROLE `+r)
	})
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.User = role
	app, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer app.Close()
	log := postgres.NewAuditLog(app)
	who := uuid.New()
	require.NoError(t, log.Record(ctx, commands.AuditEntry{Action: commands.AuditRoleChange, Actor: who, Subject: who, At: time.Now(), Detail: map[string]string{"role": "admin"}}), "the application role cannot append")
	for _, stmt := range []string{`UPDATE audit_log SET ip = 'x'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`, `ALTER TABLE audit_log DISABLE TRIGGER USER`, `DROP TABLE audit_log`} {
		_, err := app.Exec(ctx, stmt)
		assert.True(t, isPGCode(err, "42501"), "application role ran %q: err = %v, want permission denied (42501)", stmt, err)
	}
	n, brk, err := log.Verify(ctx)
	if assert.NoError(t, err, "Verify as the application role") {
		assert.Nil(t, brk, "Verify as the application role: want the chain intact")
		assert.EqualValues(t, 1, n, "Verify as the application role: entries")
	}
}

func isPGCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
