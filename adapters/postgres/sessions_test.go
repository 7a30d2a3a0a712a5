package postgres_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// activeAccount seeds an active account with the given password hash.
func activeAccount(t *testing.T, pool *pgxpool.Pool, hash string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	accounts := postgres.NewAccounts(pool)
	id := uuid.New()
	key := sha256.Sum256(id[:])
	require.NoError(t, accounts.Claim(ctx, postgres.Account{UserID: id, EmailKey: key[:], PasswordHash: hash}))
	require.NoError(t, accounts.Complete(ctx, id, nil))
	return id
}

func tokenHash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// newSession stores a session for user with first token tok.
func newSession(t *testing.T, s *postgres.Sessions, user uuid.UUID, hash, tok string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	require.NoError(t, s.Create(context.Background(), commands.NewSession{ID: id, UserID: user, TokenHash: tokenHash(tok),
		ExpiresAt: time.Now().Add(time.Hour), UserAgent: "test", IP: "192.0.2.1", PasswordHash: hash}))
	return id
}

func TestASessionIsCreatedOnlyWhileTheVerifiedPasswordIsCurrent(t *testing.T) {
	pool := migrated(t)
	s := postgres.NewSessions(pool)
	user := activeAccount(t, pool, "hash-1")
	newSession(t, s, user, "hash-1", "t1")
	err := s.Create(context.Background(), commands.NewSession{ID: uuid.New(), UserID: user, TokenHash: tokenHash("t2"),
		ExpiresAt: time.Now().Add(time.Hour), PasswordHash: "hash-0"})
	require.ErrorIs(t, err, domain.ErrUnauthorized, "login that verified a replaced password = %v, want ErrUnauthorized", err)
}

func TestRotationIsSingleUseAndReuseRevokesTheFamily(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	s := postgres.NewSessions(pool)
	var announced []uuid.UUID
	s.OnRevoke = func(ids []uuid.UUID, _ time.Time) { announced = append(announced, ids...) }
	user := activeAccount(t, pool, "h")
	sid := newSession(t, s, user, "h", "t1")

	rot, err := s.Rotate(ctx, tokenHash("t1"), tokenHash("t2"))
	require.NoError(t, err, "first rotation = %+v,", rot)
	require.Equal(t, commands.Rotated, rot.Outcome, "first rotation = %+v, %v", rot, err)
	require.Equal(t, sid, rot.SessionID, "first rotation = %+v, %v", rot, err)
	require.Equal(t, user, rot.UserID, "first rotation = %+v, %v", rot, err)
	rot, err = s.Rotate(ctx, tokenHash("t1"), tokenHash("t3"))
	require.NoError(t, err, "replayed token = %+v, %v, want reuse", rot, err)
	require.Equal(t, commands.RotationReused, rot.Outcome, "replayed token = %+v, %v, want reuse", rot, err)
	require.Equal(t, sid, rot.SessionID, "replayed token = %+v, %v, want reuse", rot, err)
	require.Len(t, announced, 1, "revocations announced = %v, want [%v]", announced, sid)
	require.Equal(t, sid, announced[0], "revocations announced = %v, want [%v]", announced, sid)
	// The newest token of the family is dead too.
	rot, err = s.Rotate(ctx, tokenHash("t2"), tokenHash("t4"))
	require.NoError(t, err, "token of the revoked family = %+v, %v, want invalid", rot, err)
	require.Equal(t, commands.RotationInvalid, rot.Outcome, "token of the revoked family = %+v, %v, want invalid", rot, err)
	var reason string
	err = pool.QueryRow(ctx, `SELECT revoke_reason FROM refresh_families WHERE id = $1`, sid).Scan(&reason)
	require.NoError(t, err, "revoke reason = %q,", reason)
	require.Equal(t, commands.RevokeReuse, reason, "revoke reason = %q, %v", reason, err)
	rot, err = s.Rotate(ctx, tokenHash("never issued"), tokenHash("t5"))
	require.NoError(t, err, "unknown token = %+v,", rot)
	require.Equal(t, commands.RotationInvalid, rot.Outcome, "unknown token = %+v, %v", rot, err)
}

func TestAnExpiredSessionCannotRotate(t *testing.T) {
	pool := migrated(t)
	s := postgres.NewSessions(pool)
	user := activeAccount(t, pool, "h")
	require.NoError(t, s.Create(context.Background(), commands.NewSession{ID: uuid.New(), UserID: user, TokenHash: tokenHash("old"),
		ExpiresAt: time.Now().Add(-time.Second), PasswordHash: "h"}))
	rot, err := s.Rotate(context.Background(), tokenHash("old"), tokenHash("new"))
	require.NoError(t, err, "expired session = %+v,", rot)
	require.Equal(t, commands.RotationInvalid, rot.Outcome, "expired session = %+v, %v", rot, err)
}

func TestConcurrentRotationsOfOneTokenExactlyOneWins(t *testing.T) {
	pool := migrated(t)
	s := postgres.NewSessions(pool)
	user := activeAccount(t, pool, "h")
	newSession(t, s, user, "h", "t")
	const n = 8
	outcomes := make([]commands.RotationOutcome, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rot, err := s.Rotate(context.Background(), tokenHash("t"), tokenHash("next-"+string(rune('a'+i))))
			assert.NoError(t, err)
			outcomes[i] = rot.Outcome
		}()
	}
	close(start)
	wg.Wait()
	count := map[commands.RotationOutcome]int{}
	for _, o := range outcomes {
		count[o]++
	}
	require.EqualValues(t, 1, count[commands.Rotated], "outcomes %v: want exactly one rotation, the rest reuse (or invalid once revoked)", count)
	require.True(t, count[commands.RotationReused] >= 1, "outcomes %v: want exactly one rotation, the rest reuse (or invalid once revoked)", count)
	require.Equal(t, n, count[commands.Rotated]+count[commands.RotationReused]+count[commands.RotationInvalid], "outcomes %v: want exactly one rotation, the rest reuse (or invalid once revoked)", count)
}

func TestPasswordChangeRevokesEverySessionInTheSameTransaction(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	s := postgres.NewSessions(pool)
	user := activeAccount(t, pool, "old")
	other := activeAccount(t, pool, "x")
	newSession(t, s, user, "old", "a")
	newSession(t, s, user, "old", "b")
	keep := newSession(t, s, other, "x", "c")
	err := s.ChangePassword(ctx, user, "stale", "new")
	require.ErrorIs(t, err, domain.ErrConflict, "change from a stale hash = %v, want ErrConflict", err)
	require.NoError(t, s.ChangePassword(ctx, user, "old", "new"))
	list, err := s.List(ctx, user)
	require.NoError(t, err, "sessions after password change = %v,", list)
	require.Len(t, list, 0, "sessions after password change = %v, %v", list, err)
	list, err = s.List(ctx, other)
	require.NoError(t, err, "another user's sessions = %v,", list)
	require.Len(t, list, 1, "another user's sessions = %v, %v", list, err)
	require.Equal(t, keep, list[0].ID, "another user's sessions = %v, %v", list, err)
}

// waitLive runs r until the test ends and waits for its first load.
func waitLive(t *testing.T, r *postgres.Revocations) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, 5*time.Second, "revocation view live", r.Live)
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		require.LessOrEqual(t, time.Since(start), within, "%s: not within %v", what, within)
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func revoked(t *testing.T, r *postgres.Revocations, sid, user uuid.UUID) bool {
	t.Helper()
	ok, err := r.Revoked(sid, user)
	require.NoError(t, err)
	return ok
}

func TestEveryViewLearnsOfARevocationWhenItCommits(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	s := postgres.NewSessions(pool) // no OnRevoke: both views learn only through PostgreSQL
	a := postgres.NewRevocations(pool, time.Hour, nil)
	b := postgres.NewRevocations(pool, time.Hour, nil)
	waitLive(t, a)
	waitLive(t, b)
	user := activeAccount(t, pool, "h")
	s1 := newSession(t, s, user, "h", "1")
	s2 := newSession(t, s, user, "h", "2")
	require.False(t, revoked(t, a, s1, user), "live sessions reported revoked")
	require.False(t, revoked(t, b, s2, user), "live sessions reported revoked")
	require.NoError(t, s.Revoke(ctx, user, s1, commands.RevokeLogout))
	took := eventually(t, 2*time.Second, "view b learns of the logout", func() bool { return revoked(t, b, s1, user) })
	t.Logf("propagation to the other view took %v", took)
	require.False(t, revoked(t, b, s2, user), "logout revoked another session")
	_, err := s.RevokeAll(ctx, user, commands.RevokeLogoutAll)
	require.NoError(t, err)
	eventually(t, 2*time.Second, "view a learns of logout-all", func() bool { return revoked(t, a, s2, user) })

	// Another user's logout does not touch this one's session.
	other := activeAccount(t, pool, "h")
	s3 := newSession(t, s, other, "h", "3")
	require.NoError(t, s.Revoke(ctx, user, s3, commands.RevokeLogout))
	time.Sleep(50 * time.Millisecond)
	require.False(t, revoked(t, a, s3, other), "a user revoked another user's session")
}

// A token signed with the server's key is still refused when its session
// is made up or belongs to another user: the session check is a second
// line behind the signature, live view or not.
func TestASessionCarriesOnlyItsOwnUsersTokens(t *testing.T) {
	pool := migrated(t)
	s := postgres.NewSessions(pool)
	ada, bob := activeAccount(t, pool, "h"), activeAccount(t, pool, "h")
	adas := newSession(t, s, ada, "h", "1")
	for _, stage := range []string{"not live", "live"} {
		r := postgres.NewRevocations(pool, time.Hour, nil)
		if stage == "live" {
			waitLive(t, r)
		}
		for range 2 { // the second answer of a live view comes from memory
			assert.False(t, revoked(t, r, adas, ada), "%s: Ada's token of her session", stage)
			assert.True(t, revoked(t, r, adas, bob), "%s: Bob's token naming Ada's session", stage)
			assert.True(t, revoked(t, r, uuid.New(), ada), "%s: a token naming a session that does not exist", stage)
		}
	}
}

func TestAViewThatLostItsFeedFailsClosedAndReloadsOnReconnect(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	s := postgres.NewSessions(pool)
	r := postgres.NewRevocations(pool, time.Hour, nil)
	user := activeAccount(t, pool, "h")
	live := newSession(t, s, user, "h", "1")
	gone := newSession(t, s, user, "h", "2")

	// Not running: every answer comes from PostgreSQL.
	require.False(t, r.Live(), "live before Run")
	require.NoError(t, s.Revoke(ctx, user, gone, commands.RevokeLogout))
	require.False(t, revoked(t, r, live, user), "not-live view must read PostgreSQL (and treat unknown sessions as revoked)")
	require.True(t, revoked(t, r, gone, user), "not-live view must read PostgreSQL (and treat unknown sessions as revoked)")
	require.True(t, revoked(t, r, uuid.New(), user), "not-live view must read PostgreSQL (and treat unknown sessions as revoked)")

	waitLive(t, r)
	require.True(t, revoked(t, r, gone, user), "the first load missed a revocation")
	// Kill the listening connection; revoke while the view reconnects.
	_, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerName)
	require.NoError(t, err)
	// The view notices at once (the server says goodbye); a connection that
	// dies silently is noticed by the keep-alive query instead.
	eventually(t, 2*time.Second, "view notices its feed is gone", func() bool { return !r.Live() })
	require.NoError(t, s.Revoke(ctx, user, live, commands.RevokeLogout))
	// The revocation must hold: from PostgreSQL while not live, from the
	// reload (or the notification) once live again.
	require.True(t, revoked(t, r, live, user), "revocation committed while the feed was down was accepted")
	eventually(t, 10*time.Second, "view live again", r.Live)
	require.True(t, revoked(t, r, live, user), "reload after reconnect missed a revocation")
	require.True(t, revoked(t, r, gone, user), "reload after reconnect missed a revocation")
}

func TestANotLiveViewWithoutPostgreSQLRefusesToGuess(t *testing.T) {
	pool := migrated(t)
	dsn := pool.Config().ConnString()
	dead, err := postgres.Open(context.Background(), dsn, 2)
	require.NoError(t, err)
	dead.Close()
	r := postgres.NewRevocations(dead, time.Hour, nil)
	_, err = r.Revoked(uuid.New(), uuid.New())
	require.ErrorIs(t, err, domain.ErrUnavailable, "revocation check without a database = %v, want ErrUnavailable", err)
}

func TestARevocationAnswersOnlyAfterEveryListeningViewAppliedIt(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	views := make([]*postgres.Revocations, 3)
	for i := range views {
		views[i] = postgres.NewRevocations(pool, time.Hour, nil)
		views[i].BroadcastWait = 10 * time.Second // a missing acknowledgement would show as a slow revoke
		waitLive(t, views[i])
	}
	s := postgres.NewSessions(pool)
	s.OnRevoke = views[0].Committed
	user := activeAccount(t, pool, "h")
	for round := range 5 {
		sid := newSession(t, s, user, "h", "tok"+string(rune('a'+round)))
		start := time.Now()
		require.NoError(t, s.Revoke(ctx, user, sid, commands.RevokeLogout))
		took := time.Since(start)
		require.LessOrEqual(t, took, 2*time.Second, "revoke took %v: it waited for an acknowledgement that never came", took)
		for i, v := range views {
			require.True(t, revoked(t, v, sid, user), "round %d: view %d still accepts the session when the revocation returned", round, i)
		}
	}
}

// TestAPasswordChangeRetiresOnlyThatUsersResetLinksAndOnlyIfItCommits:
// the user's unused reset tokens die with the change, in its transaction:
// a change that loses a race (ErrConflict) retires nothing; verification
// tokens and other users' reset tokens are untouched.
func TestAPasswordChangeRetiresOnlyThatUsersResetLinksAndOnlyIfItCommits(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	s := postgres.NewSessions(pool)
	mail := postgres.NewEmailTokens(pool)
	user := activeAccount(t, pool, "hash-1")
	other := activeAccount(t, pool, "hash-1")
	issue := func(u uuid.UUID, purpose, tok string) {
		t.Helper()
		require.NoError(t, mail.Issue(ctx, u, purpose, tok, time.Hour))
	}
	issue(user, commands.PurposeResetPassword, "reset-user")
	issue(user, commands.PurposeVerifyEmail, "verify-user")
	issue(other, commands.PurposeResetPassword, "reset-other")

	require.NoError(t, s.ChangePassword(ctx, user, "hash-1", "hash-2"))
	_, err := mail.Consume(ctx, commands.PurposeResetPassword, "reset-user")
	require.ErrorIs(t, err, domain.ErrNotFound, "the user's reset link after the change = %v, want ErrNotFound", err)
	for _, tc := range []struct{ purpose, tok string }{{commands.PurposeVerifyEmail, "verify-user"}, {commands.PurposeResetPassword, "reset-other"}} {
		_, err := mail.Consume(ctx, tc.purpose, tc.tok)
		require.NoError(t, err, "%s retired by someone else's password change", tc.tok)
	}

	// A change that loses the race retires nothing: the link survives it.
	issue(user, commands.PurposeResetPassword, "reset-again")
	err = s.ChangePassword(ctx, user, "hash-1", "hash-3")
	require.ErrorIs(t, err, domain.ErrConflict, "change from a stale hash = %v, want ErrConflict", err)
	_, err = mail.Consume(ctx, commands.PurposeResetPassword, "reset-again")
	require.NoError(t, err, "a refused password change retired the reset link")
}
