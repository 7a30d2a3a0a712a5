package metrics

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// admitted is a batch's samples.pushed events after admit: the decoded
// body of each event to apply, by position in the batch. Events not in it
// were skipped (a second copy of an applied event) or refused.
type admitted map[int]ingest.Pushed

// admit decides, before anything is written, which samples.pushed events
// of a batch are applied. The read model keeps one row per applied event
// (pushes_applied: its id and the digest of its batch), so an event id
// seen again is recognised whatever Redis or the command side remember: a
// copy that says the same (a Kafka redelivery, a replay, an append the
// command side repeated after a crash) is skipped, and one that says
// something else is refused, recorded as a 'refused' dead letter for
// operators, and never applied: the first event under an id stands. One
// row per event, not per sample, costs about one percent of a batch's
// writes.
func (m *Projector) admit(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) (admitted, error) {
	type candidate struct {
		i      int
		body   ingest.Pushed
		digest [32]byte
	}
	var (
		cands []candidate
		ids   []uuid.UUID
	)
	for i, e := range events {
		if e.Type != ingest.EventPushed {
			continue
		}
		var p ingest.Pushed
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			return nil, fmt.Errorf("event %s: %w", e.ID, err)
		}
		cands = append(cands, candidate{i: i, body: p, digest: p.Batch.Digest()})
		ids = append(ids, e.ID)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	applied := make(map[uuid.UUID][32]byte, len(cands))
	rows, err := tx.Query(ctx, `SELECT event_id, digest FROM `+m.table("pushes_applied")+` WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("applied pushes: %w", err)
	}
	for rows.Next() {
		var (
			id  uuid.UUID
			sum []byte
		)
		if err := rows.Scan(&id, &sum); err != nil {
			rows.Close()
			return nil, err
		}
		var d [32]byte
		copy(d[:], sum)
		applied[id] = d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("applied pushes: %w", err)
	}
	out := make(admitted, len(cands))
	var (
		newIDs, newUsers []uuid.UUID
		newDigests       [][]byte
		newParts         []int32
		newOffsets       []int64
	)
	for _, c := range cands {
		e := events[c.i]
		if d, ok := applied[e.ID]; ok {
			if d != c.digest {
				reason := fmt.Sprintf("refused: event %s says something other than the event applied under the same id before; the first stands", e.ID)
				if err := engine.Refuse(ctx, tx, m, e, reason); err != nil {
					return nil, fmt.Errorf("refuse event %s: %w", e.ID, err)
				}
			}
			continue
		}
		applied[e.ID] = c.digest
		out[c.i] = c.body
		newIDs, newUsers = append(newIDs, e.ID), append(newUsers, e.UserID)
		newDigests = append(newDigests, c.digest[:])
		newParts, newOffsets = append(newParts, e.Partition), append(newOffsets, e.Offset)
	}
	if len(newIDs) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.table("pushes_applied")+` (event_id, user_id, digest, log_partition, log_offset)
			SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::int[], $5::bigint[])`, newIDs, newUsers, newDigests, newParts, newOffsets); err != nil {
			return nil, fmt.Errorf("record applied pushes: %w", err)
		}
	}
	return out, nil
}
