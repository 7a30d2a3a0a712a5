package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/projections/metrics"
)

// A raw series longer than a page comes back page by page: every sample
// exactly once and in series order, samples sharing a start split across
// page boundaries without loss, and no next page after the last one (also
// when the last page is exactly full).
func TestARawSeriesLongerThanAPageComesBackWholePageByPage(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	s.Register(t, user, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

	// At each of 12 instants four samples start together: the watch
	// sends a 1-minute and a 5-minute one, the phone and the ring one each.
	// Starts carry microseconds, as the table keeps them.
	first := time.Date(2026, 11, 20, 8, 0, 0, 123456000, time.UTC)
	at := func(i int, d time.Duration) string {
		return first.Add(time.Duration(i)*time.Minute + d).Format(time.RFC3339Nano)
	}
	var watch, phone, ring []ingest.Sample
	for i := range 12 {
		v := float64(60 + i)
		watch = append(watch,
			projectiontest.Sample("heart_rate", at(i, 0), at(i, time.Minute), v, "bpm"),
			projectiontest.Sample("heart_rate", at(i, 0), at(i, 5*time.Minute), v+0.25, "bpm"))
		phone = append(phone, projectiontest.Sample("heart_rate", at(i, 0), at(i, time.Minute), v+0.5, "bpm"))
		ring = append(ring, projectiontest.Sample("heart_rate", at(i, 0), at(i, time.Minute), v+0.75, "bpm"))
	}
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "apple_health", Device: "watch"}, Samples: watch})
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "apple_health", Device: "phone"}, Samples: phone})
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, Samples: ring})
	project(t, s, &metrics.Projector{})
	r := &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions}

	q := metrics.MetricQuery{UserID: user, Type: metric.HeartRate, Bucket: metrics.BucketRaw,
		From: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)}
	whole, err := r.Metrics(ctx, q)
	require.NoError(t, err)
	require.Len(t, whole.Points, 48, "without a limit the whole series fits one page")
	require.Nil(t, whole.Next, "a series that fits one page has no next page")
	seen := map[string]bool{}
	for i, p := range whole.Points {
		seen[key(p)] = true
		if i > 0 {
			require.False(t, p.Start.Before(whole.Points[i-1].Start), "points are in start order: %v after %v", p.Start, whole.Points[i-1].Start)
		}
	}
	require.Len(t, seen, 48, "every sample has its own natural key")

	for _, limit := range []int{3, 4, 7, 48} {
		t.Run(fmt.Sprintf("pages of %d", limit), func(t *testing.T) {
			var got []metrics.MetricPoint
			tiesSplit := 0
			pq := q
			pq.Limit = limit
			for pages := 1; ; pages++ {
				require.LessOrEqual(t, pages, (48+limit-1)/limit, "more pages than 48 samples fill")
				page, err := r.Metrics(ctx, pq)
				require.NoError(t, err)
				require.LessOrEqual(t, len(page.Points), limit, "page %d is larger than the limit", pages)
				require.NotEmpty(t, page.Points, "page %d is empty: the previous page should have been the last", pages)
				if len(got) > 0 && got[len(got)-1].Start.Equal(page.Points[0].Start) {
					tiesSplit++
				}
				got = append(got, page.Points...)
				if page.Next == nil {
					break
				}
				last := page.Points[len(page.Points)-1]
				require.Truef(t, page.Next.Start.Equal(last.Start) && page.Next.End.Equal(last.End) && page.Next.Source == last.Source,
					"the next page starts after the last point of this one: next %+v, last %s", *page.Next, key(last))
				pq.After = page.Next
			}
			require.Len(t, got, len(whole.Points), "samples across pages")
			for i := range got {
				assert.Equal(t, key(whole.Points[i]), key(got[i]), "sample %d: the pages read in the order of the whole series, each sample once", i)
				assert.Equal(t, whole.Points[i].Value, got[i].Value, "sample %d value", i)
			}
			if limit%4 != 0 {
				assert.Positive(t, tiesSplit, "a page boundary falls between samples that share a start")
			}
		})
	}
}

func key(p metrics.MetricPoint) string {
	return p.Start.UTC().Format(time.RFC3339Nano) + " " + p.End.UTC().Format(time.RFC3339Nano) + " " + p.Source
}

// A sleep list longer than a page comes back page by page: every session
// once, sessions that end at the same instant split across pages without
// loss, no next page after the last.
func TestASleepListLongerThanAPageComesBackWholePageByPage(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	s.Register(t, user, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	session := func(start, end time.Time) ingest.SleepSession {
		return ingest.SleepSession{Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339), Stages: []ingest.Stage{
			{Stage: "light", Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339)},
		}}
	}
	// Five nights; each ends at 07:00 for all three sessions: the ring's
	// from 23:00 and two of the watch's (from 23:30 and, after waking, from
	// 00:10).
	var ring, watch []ingest.SleepSession
	for n := range 5 {
		wake := time.Date(2026, 11, 16+n, 7, 0, 0, 0, time.UTC)
		ring = append(ring, session(wake.Add(-8*time.Hour), wake))
		watch = append(watch, session(wake.Add(-7*time.Hour-30*time.Minute), wake), session(wake.Add(-6*time.Hour-50*time.Minute), wake))
	}
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, SleepSessions: ring})
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "apple_health", Device: "watch"}, SleepSessions: watch})
	project(t, s, &metrics.Projector{})
	r := &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions}

	q := metrics.SleepQuery{UserID: user, From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	whole, err := r.SleepSessions(ctx, q)
	require.NoError(t, err)
	require.Len(t, whole.Sessions, 15, "without a limit every session fits one page")
	require.Nil(t, whole.Next, "a list that fits one page has no next page")

	for _, limit := range []int{2, 3, 15} {
		t.Run(fmt.Sprintf("pages of %d", limit), func(t *testing.T) {
			var got []metrics.SleepSession
			tiesSplit := 0
			pq := q
			pq.Limit = limit
			for pages := 1; ; pages++ {
				require.LessOrEqual(t, pages, (15+limit-1)/limit, "more pages than 15 sessions fill")
				page, err := r.SleepSessions(ctx, pq)
				require.NoError(t, err)
				require.LessOrEqual(t, len(page.Sessions), limit, "page %d is larger than the limit", pages)
				require.NotEmpty(t, page.Sessions, "page %d is empty: the previous page should have been the last", pages)
				if len(got) > 0 && got[len(got)-1].End.Equal(page.Sessions[0].End) {
					tiesSplit++
				}
				got = append(got, page.Sessions...)
				if page.Next == nil {
					break
				}
				pq.After = page.Next
			}
			require.Len(t, got, 15, "sessions across pages")
			for i := range got {
				assert.Equal(t, whole.Sessions[i].Start.UTC(), got[i].Start.UTC(), "session %d start", i)
				assert.Equal(t, whole.Sessions[i].End.UTC(), got[i].End.UTC(), "session %d end", i)
				assert.Equal(t, whole.Sessions[i].Source, got[i].Source, "session %d source", i)
			}
			if limit%3 != 0 {
				assert.Positive(t, tiesSplit, "a page boundary falls between sessions that end together")
			}
		})
	}
}
