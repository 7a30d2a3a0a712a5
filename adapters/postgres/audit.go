package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands"
)

// AuditLog is the append-only, hash-chained audit_log table. It implements
// commands.Audit; reads and the chain check serve operators.
type AuditLog struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewAuditLog wraps a pool.
func NewAuditLog(pool *pgxpool.Pool) *AuditLog { return &AuditLog{pool: pool, now: time.Now} }

// AuditRecord is commands.AuditRecord.
type AuditRecord = commands.AuditRecord

// auditLock serialises appends so every entry links to its predecessor.
// Audit volume (logins, security events, operator reads) is small enough
// that one writer at a time costs nothing measurable.
const auditLock = 0x6175646974 // "audit"

// Record appends e to the chain: under a transaction-scoped advisory lock
// it reads the last hash, computes the new one and inserts the row.
func (a *AuditLog) Record(ctx context.Context, e commands.AuditEntry) error {
	if e.Action == "" {
		return errors.New("audit entry without action")
	}
	if e.At.IsZero() {
		e.At = a.now()
	}
	// PostgreSQL keeps microseconds: hash what is stored.
	e.At = e.At.UTC().Truncate(time.Microsecond)
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLock)); err != nil {
			return err
		}
		var seq int64
		prev := make([]byte, sha256.Size) // the first entry links to zeros
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rec := AuditRecord{AuditEntry: e, Seq: seq + 1, PrevHash: prev}
		rec.Hash = auditDigest(rec)
		detail, err := json.Marshal(e.Detail)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (seq, at, action, actor, subject, ip, detail, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			rec.Seq, e.At, e.Action, nullUUID(e.Actor), nullUUID(e.Subject), e.IP, detail, rec.PrevHash, rec.Hash)
		return err
	})
}

// auditDigest is the entry's hash: SHA-256 over the previous hash and a
// canonical JSON encoding (fixed field order, map keys sorted by
// encoding/json, time in RFC 3339 with microseconds, UTC).
func auditDigest(r AuditRecord) []byte {
	canon, _ := json.Marshal(struct {
		Seq     int64             `json:"seq"`
		At      string            `json:"at"`
		Action  string            `json:"action"`
		Actor   string            `json:"actor"`
		Subject string            `json:"subject"`
		IP      string            `json:"ip"`
		Detail  map[string]string `json:"detail"`
	}{r.Seq, r.At.UTC().Format("2006-01-02T15:04:05.000000Z"), r.Action, r.Actor.String(), r.Subject.String(), r.IP, r.Detail})
	h := sha256.New()
	h.Write(r.PrevHash)
	h.Write(canon)
	return h.Sum(nil)
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// AuditFilter is commands.AuditFilter.
type AuditFilter = commands.AuditFilter

// List returns the entries matching f in chain order (at most f.Limit,
// default 100, at most 1000).
func (a *AuditLog) List(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	add("seq > $%d", f.After)
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.Actor != uuid.Nil {
		add("actor = $%d", f.Actor)
	}
	if f.Subject != uuid.Nil {
		add("subject = $%d", f.Subject)
	}
	if !f.From.IsZero() {
		add("at >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("at < $%d", f.To)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rows, err := a.pool.Query(ctx, `SELECT seq, at, action, actor, subject, ip, detail, prev_hash, hash FROM audit_log WHERE `+
		strings.Join(where, " AND ")+fmt.Sprintf(` ORDER BY seq LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", pgerr.Classify(err))
	}
	return scanAudit(rows)
}

func scanAudit(rows pgx.Rows) ([]AuditRecord, error) {
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		var actor, subject *uuid.UUID
		if err := rows.Scan(&r.Seq, &r.At, &r.Action, &actor, &subject, &r.IP, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
			return nil, err
		}
		if actor != nil {
			r.Actor = *actor
		}
		if subject != nil {
			r.Subject = *subject
		}
		r.At = r.At.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", pgerr.Classify(err))
	}
	return out, nil
}

// AuditBreak is commands.AuditBreak.
type AuditBreak = commands.AuditBreak

// Verify walks the whole chain in order, recomputing every hash. It
// returns the number of entries checked and, if the chain is broken, where.
func (a *AuditLog) Verify(ctx context.Context) (int64, *AuditBreak, error) {
	prev := make([]byte, sha256.Size)
	var n, after int64
	for {
		page, err := a.List(ctx, AuditFilter{After: after, Limit: 1000})
		if err != nil {
			return n, nil, err
		}
		for _, r := range page {
			switch {
			case r.Seq != n+1:
				return n, &AuditBreak{Seq: n + 1, Reason: fmt.Sprintf("entry %d is missing (next stored entry is %d)", n+1, r.Seq)}, nil
			case !bytes.Equal(r.PrevHash, prev):
				return n, &AuditBreak{Seq: r.Seq, Reason: "previous-hash link does not match the entry before it"}, nil
			case !bytes.Equal(auditDigest(r), r.Hash):
				return n, &AuditBreak{Seq: r.Seq, Reason: "hash does not match the entry's contents"}, nil
			}
			prev, n, after = r.Hash, r.Seq, r.Seq
		}
		if len(page) < 1000 {
			return n, nil, nil
		}
	}
}
