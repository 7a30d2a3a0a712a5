package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// keepTimescale makes a new generation's table what its template is under
// TimescaleDB: CREATE TABLE ... (LIKE ... INCLUDING ALL) copies columns,
// keys and indexes but not a hypertable, its compression settings or its
// policies, so without this the first blue/green rebuild would silently
// leave TimescaleDB. On PostgreSQL without the extension (the embedded
// default) it does nothing; queries are plain SQL either way.
func keepTimescale(ctx context.Context, tx pgx.Tx, template, target string) error {
	var present bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('timescaledb_information.dimensions') IS NOT NULL`).Scan(&present); err != nil || !present {
		return err
	}
	var column, interval string
	err := tx.QueryRow(ctx, `SELECT column_name::text, time_interval::text FROM timescaledb_information.dimensions
		WHERE hypertable_schema = current_schema() AND hypertable_name = $1 AND dimension_type = 'Time' ORDER BY dimension_number LIMIT 1`, template).Scan(&column, &interval)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // the template is a plain table
	}
	if err != nil {
		return fmt.Errorf("hypertable %s: %w", template, err)
	}
	if _, err := tx.Exec(ctx, `SELECT create_hypertable($1::regclass, $2::name, chunk_time_interval => $3::interval)`, target, column, interval); err != nil {
		return fmt.Errorf("make %s a hypertable: %w", target, err)
	}
	rows, err := tx.Query(ctx, `SELECT attname::text, segmentby_column_index, orderby_column_index, orderby_asc FROM timescaledb_information.compression_settings
		WHERE hypertable_schema = current_schema() AND hypertable_name = $1`, template)
	if err != nil {
		return fmt.Errorf("compression settings of %s: %w", template, err)
	}
	type setting struct {
		name           string
		segment, order *int16
		asc            *bool
	}
	var settings []setting
	for rows.Next() {
		var s setting
		if err := rows.Scan(&s.name, &s.segment, &s.order, &s.asc); err != nil {
			rows.Close()
			return err
		}
		settings = append(settings, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(settings) > 0 {
		segment := make([]string, 0, len(settings))
		order := []string{}
		bySegment := map[int16]string{}
		byOrder := map[int16]string{}
		for _, s := range settings {
			id := pgx.Identifier{s.name}.Sanitize()
			if s.segment != nil {
				bySegment[*s.segment] = id
			}
			if s.order != nil {
				dir := " DESC"
				if s.asc == nil || *s.asc {
					dir = " ASC"
				}
				byOrder[*s.order] = id + dir
			}
		}
		for i := int16(1); int(i) <= len(settings); i++ {
			if v, ok := bySegment[i]; ok {
				segment = append(segment, v)
			}
			if v, ok := byOrder[i]; ok {
				order = append(order, v)
			}
		}
		opts := []string{"timescaledb.compress"}
		if len(segment) > 0 {
			opts = append(opts, "timescaledb.compress_segmentby = '"+strings.Join(segment, ", ")+"'")
		}
		if len(order) > 0 {
			opts = append(opts, "timescaledb.compress_orderby = '"+strings.Join(order, ", ")+"'")
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{target}.Sanitize()+` SET (`+strings.Join(opts, ", ")+`)`); err != nil {
			return fmt.Errorf("compression of %s: %w", target, err)
		}
	}
	// The template's policies, with the same settings.
	for _, pol := range []struct{ proc, key, add string }{
		{"policy_compression", "compress_after", "add_compression_policy"},
		{"policy_retention", "drop_after", "add_retention_policy"},
	} {
		var after *string
		err := tx.QueryRow(ctx, `SELECT config->>$3 FROM timescaledb_information.jobs
			WHERE proc_name = $1 AND hypertable_schema = current_schema() AND hypertable_name = $2 LIMIT 1`, pol.proc, template, pol.key).Scan(&after)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && after == nil) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s of %s: %w", pol.proc, template, err)
		}
		if _, err := tx.Exec(ctx, `SELECT `+pol.add+`($1::regclass, $2::interval)`, target, *after); err != nil {
			return fmt.Errorf("%s on %s: %w", pol.add, target, err)
		}
	}
	return nil
}
