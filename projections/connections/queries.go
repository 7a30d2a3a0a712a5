package connections

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/projections/engine"
)

// Reader queries the live generation of the connections read model.
type Reader struct {
	Pool     *pgxpool.Pool
	Versions *engine.Versions
}

// ScoreView is one provider score of one day.
type ScoreView struct {
	Provider provider.Name
	Kind     string
	Day      string
	Value    float64
}

// Scores returns the user's provider scores of days in [from, to]
// (YYYY-MM-DD), by day then provider and kind.
func (r *Reader) Scores(ctx context.Context, user uuid.UUID, from, to time.Time) ([]ScoreView, error) {
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return nil, err
	}
	rows, err := r.Pool.Query(ctx, `SELECT provider, kind, day::text, value FROM `+engine.Table("provider_scores", gen)+`
		WHERE user_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day, provider, kind`, user, from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("provider scores: %w", err)
	}
	defer rows.Close()
	var out []ScoreView
	for rows.Next() {
		var s ScoreView
		var p string
		if err := rows.Scan(&p, &s.Kind, &s.Day, &s.Value); err != nil {
			return nil, err
		}
		s.Provider = provider.Name(p)
		out = append(out, s)
	}
	return out, rows.Err()
}
