package connections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/eventstore"
)

// maxFailures is how many fetches in a row may fail before the connection
// shows status error (the last error is shown from the first failure).
const maxFailures = 3

// accessToken returns a usable access token: refreshed when it expires
// within a minute (or when force is set, after a 401), the rotated refresh
// token stored at once. Refreshes of one connection are serialised in this
// process and re-read the stored tokens first, so a token another worker
// (or process) refreshed meanwhile is used instead of spending a refresh
// token twice. A refresh answered invalid_grant revokes the connection
// (connection.revoked, reason provider) and returns ErrGrantRevoked, unless
// the stored tokens changed meanwhile (another process refreshed them).
func (s *Service) accessToken(ctx context.Context, conn *Connection, c Client, force bool) (string, error) {
	tok, err := s.open(ctx, *conn)
	if err != nil {
		return "", err
	}
	if !force && !s.expiring(tok) {
		return tok.AccessToken, nil
	}
	mu, _ := s.refreshing.LoadOrStore(conn.UserID.String()+"/"+string(conn.Provider), &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	stored, err := s.d.Store.Get(ctx, conn.UserID, conn.Provider)
	if err != nil {
		return "", err
	}
	if stored.Status == provider.StatusRevoked || len(stored.SealedTokens) == 0 {
		conn.Status, conn.SealedTokens = provider.StatusRevoked, nil
		return "", ErrGrantRevoked
	}
	current, err := s.open(ctx, stored)
	if err != nil {
		return "", err
	}
	if current.AccessToken != tok.AccessToken && !s.expiring(current) {
		conn.SealedTokens = stored.SealedTokens
		return current.AccessToken, nil // refreshed meanwhile
	}
	if current.RefreshToken == "" {
		return current.AccessToken, nil // long-lived token: nothing to refresh
	}
	fresh, err := c.Refresh(ctx, current.RefreshToken)
	if errors.Is(err, ErrGrantRevoked) {
		if again, gerr := s.d.Store.Get(ctx, conn.UserID, conn.Provider); gerr == nil && len(again.SealedTokens) > 0 && string(again.SealedTokens) != string(stored.SealedTokens) {
			if t, oerr := s.open(ctx, again); oerr == nil {
				conn.SealedTokens = again.SealedTokens
				return t.AccessToken, nil // another process refreshed first
			}
		}
		if rerr := s.revoke(ctx, stored, provider.RevokedByProvider); rerr != nil {
			return "", rerr
		}
		conn.Status, conn.SealedTokens = provider.StatusRevoked, nil
		return "", ErrGrantRevoked
	}
	if err != nil {
		return "", fmt.Errorf("token refresh: %w", err)
	}
	if fresh.RefreshToken == "" {
		fresh.RefreshToken = current.RefreshToken // a provider that does not rotate keeps the old one valid
	}
	if len(fresh.Scopes) == 0 {
		fresh.Scopes = current.Scopes
	}
	sealed, err := s.seal(ctx, conn.UserID, fresh)
	if err != nil {
		return "", err
	}
	if err := s.d.Store.SaveTokens(ctx, conn.UserID, conn.Provider, sealed); err != nil {
		return "", err
	}
	conn.SealedTokens = sealed
	return fresh.AccessToken, nil
}

// expiring reports whether t expires within refreshAhead (never for a
// token without an expiry).
func (s *Service) expiring(t Token) bool {
	return !t.Expiry.IsZero() && !t.Expiry.After(s.d.Now.Now().Add(refreshAhead))
}

// withToken runs call with an access token, refreshing once on 401.
func (s *Service) withToken(ctx context.Context, conn *Connection, c Client, call func(access string) error) error {
	access, err := s.accessToken(ctx, conn, c, false)
	if err != nil {
		return err
	}
	err = call(access)
	if !errors.Is(err, ErrUnauthorized) {
		return err
	}
	if access, err = s.accessToken(ctx, conn, c, true); err != nil {
		return err
	}
	return call(access)
}

// recordID is the deterministic id of a provider.record_fetched event:
// the provider's record id and the digest of what it said, so fetching
// the same record twice is one event and a changed record a new one.
func recordID(p provider.Name, r Record) uuid.UUID {
	sum := sha256.Sum256(r.Raw)
	return eventstore.DeterministicID(provider.EventRecordFetched, string(p), r.DataType, r.ID, hex.EncodeToString(sum[:]))
}

// appendRecords appends one provider.record_fetched per record.
func (s *Service) appendRecords(ctx context.Context, conn *Connection, records []Record) error {
	now := s.d.Now.Now().UTC().Truncate(time.Microsecond)
	for _, r := range records {
		body := provider.RecordFetched{Provider: conn.Provider, DataType: r.DataType, RecordID: r.ID, FetchedAt: now, Record: r.Raw}
		e, err := s.d.Envelope.Event(ctx, recordID(conn.Provider, r), conn.UserID, provider.EventRecordFetched, body)
		if err != nil {
			return err
		}
		if _, err := s.d.Log.Append(ctx, e); err != nil {
			return err
		}
	}
	if len(records) > 0 {
		conn.LastDataAt = now
	}
	return nil
}

// HandleNotified follows a provider.notified pointer: the records it names
// are fetched with the user's token and appended as
// provider.record_fetched. A connection that is gone or revoked ends the
// work (nil: nothing to retry). Failures are recorded on the connection
// and returned, so the worker retries; ErrGrantRevoked is final.
func (s *Service) HandleNotified(ctx context.Context, user uuid.UUID, n provider.Notified) error {
	c, err := s.client(n.Provider)
	if err != nil {
		return nil // no longer configured: nothing can be fetched
	}
	conn, err := s.d.Store.Get(ctx, user, n.Provider)
	if err != nil || conn.Status == provider.StatusRevoked || conn.ProviderUserID != n.ProviderUserID {
		return nil
	}
	var records []Record
	err = s.withToken(ctx, &conn, c, func(access string) (err error) {
		records, err = c.Fetch(ctx, access, n)
		return err
	})
	if err == nil {
		err = s.appendRecords(ctx, &conn, records)
	}
	return s.settle(ctx, &conn, err)
}

// settle records the outcome of a fetch on the connection: success clears
// the error and stamps the sync; a failure is put in plain words, and
// after maxFailures in a row the connection shows status error.
func (s *Service) settle(ctx context.Context, conn *Connection, err error) error {
	if errors.Is(err, ErrGrantRevoked) {
		return nil // revoked and visible; retrying cannot help
	}
	now := s.d.Now.Now().UTC().Truncate(time.Microsecond)
	if err == nil {
		conn.LastSyncAt, conn.LastError, conn.Failures = now, "", 0
		if conn.Status == provider.StatusError {
			conn.Status = provider.StatusConnected
			if conn.DoneUntil.Before(conn.BackfillTo) {
				conn.Status = provider.StatusSyncing
			}
		}
		return s.d.Store.Save(ctx, *conn)
	}
	conn.Failures++
	conn.LastError = plainWords(err)
	if conn.Failures >= maxFailures {
		conn.Status = provider.StatusError
	}
	if serr := s.d.Store.Save(ctx, *conn); serr != nil {
		s.d.Logger.Warn("could not record a fetch failure", "provider", conn.Provider, "err", serr)
	}
	return err
}

// plainWords says what went wrong in words a user understands; details
// stay in the log.
func plainWords(err error) string {
	var rl *RateLimited
	switch {
	case errors.As(err, &rl):
		return "the provider asked us to slow down; we will try again shortly"
	case errors.Is(err, ErrUnauthorized):
		return "the provider refused our access; if this persists, connect again"
	case errors.Is(err, context.DeadlineExceeded):
		return "the provider did not answer in time; we will try again"
	default:
		return "fetching data from the provider failed; we will try again"
	}
}

// BackfillStep lists one page of a connection's backfill and stores the
// progress (data type and page token), so a restart resumes where it
// stopped. It reports whether more pages remain. When every data type
// has been listed over the window, DoneUntil reaches BackfillTo and the
// connection shows connected.
func (s *Service) BackfillStep(ctx context.Context, user uuid.UUID, p provider.Name) (more bool, err error) {
	c, err := s.client(p)
	if err != nil {
		return false, nil
	}
	conn, err := s.d.Store.Get(ctx, user, p)
	if err != nil || conn.Status == provider.StatusRevoked || !conn.DoneUntil.Before(conn.BackfillTo) {
		return false, nil
	}
	types := c.DataTypes()
	if conn.Cursor == "" && len(types) > 0 {
		conn.Cursor = types[0]
	}
	var page Page
	err = s.withToken(ctx, &conn, c, func(access string) (err error) {
		page, err = c.List(ctx, access, conn.Cursor, conn.DoneUntil, conn.BackfillTo, conn.Page)
		return err
	})
	if err == nil {
		err = s.appendRecords(ctx, &conn, page.Records)
	}
	if err != nil {
		return false, s.settle(ctx, &conn, err)
	}
	conn.Page = page.Next
	if page.Next == "" {
		next := ""
		for i, t := range types {
			if t == conn.Cursor && i+1 < len(types) {
				next = types[i+1]
			}
		}
		conn.Cursor = next
		if next == "" {
			conn.DoneUntil = conn.BackfillTo
			conn.Status = provider.StatusConnected
		}
	}
	return conn.DoneUntil.Before(conn.BackfillTo), s.settle(ctx, &conn, nil)
}

// Backfill runs a connection's backfill to its end, page by page. One
// backfill per connection runs in this process at a time (the worker's and
// the ticker's would list the same pages); a second call returns at once.
func (s *Service) Backfill(ctx context.Context, user uuid.UUID, p provider.Name) error {
	mu, _ := s.backfilling.LoadOrStore(user.String()+"/"+string(p), &sync.Mutex{})
	if !mu.(*sync.Mutex).TryLock() {
		return nil
	}
	defer mu.(*sync.Mutex).Unlock()
	for {
		more, err := s.BackfillStep(ctx, user, p)
		if err != nil || !more {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// BackfillDue runs every unfinished backfill (after a restart, or a
// manual sync); failures stay on their connections and are retried on
// the next round.
func (s *Service) BackfillDue(ctx context.Context) {
	conns, err := s.d.Store.Backfilling(ctx)
	if err != nil {
		s.d.Logger.Warn("listing unfinished backfills failed", "err", err)
		return
	}
	for _, c := range conns {
		if err := s.Backfill(ctx, c.UserID, c.Provider); err != nil && ctx.Err() == nil {
			s.d.Logger.Warn("backfill step failed; it resumes on the next round", "provider", c.Provider, "err", err)
		}
	}
}
