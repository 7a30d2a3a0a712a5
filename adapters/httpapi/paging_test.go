package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/projections/metrics"
)

// rawKeyset serves points as the metrics read model serves a raw series:
// in (start, end, source) order, Limit at a time after After, with Next
// set when more follow. calls counts the reads.
func rawKeyset(points []metrics.MetricPoint, calls *atomic.Int32, seen *[]metrics.MetricQuery) func(context.Context, metrics.MetricQuery) (metrics.MetricSeries, error) {
	order := func(a, b metrics.SampleKey) int {
		return cmp.Or(a.Start.Compare(b.Start), a.End.Compare(b.End), cmp.Compare(a.Source, b.Source))
	}
	keyOf := func(p metrics.MetricPoint) metrics.SampleKey {
		return metrics.SampleKey{Start: p.Start, End: p.End, Source: p.Source}
	}
	slices.SortFunc(points, func(a, b metrics.MetricPoint) int { return order(keyOf(a), keyOf(b)) })
	return func(_ context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error) {
		calls.Add(1)
		*seen = append(*seen, q)
		out := metrics.MetricSeries{Type: q.Type, Unit: "bpm", Bucket: q.Bucket, Points: []metrics.MetricPoint{}}
		for _, p := range points {
			if q.After != nil && order(keyOf(p), *q.After) <= 0 {
				continue
			}
			if len(out.Points) == q.Limit {
				last := keyOf(out.Points[len(out.Points)-1])
				out.Next = &last
				break
			}
			out.Points = append(out.Points, p)
		}
		return out, nil
	}
}

// A raw series longer than a page is read by following `next` (and the
// same URL in the Link header) until it is absent: every sample exactly
// once, samples that share a start split across pages without loss, the
// caller's query kept and its defaulted range fixed on every page.
func TestARawSeriesLongerThanAPageIsReadByFollowingNext(t *testing.T) {
	h := newHarness(t)
	// Ten samples: at each of five instants (with microseconds, as the
	// read model keeps them) the watch and the ring measured together.
	var points []metrics.MetricPoint
	for i := range 5 {
		start := testNow.Add(-time.Hour + time.Duration(i)*time.Minute + 123456*time.Microsecond)
		for _, src := range []string{"oura/ring", "apple_health/watch"} {
			points = append(points, metrics.MetricPoint{Start: start, End: start.Add(time.Minute), Value: float64(60 + len(points)), Min: 60, Max: 60, Count: 1, Source: src})
		}
	}
	var calls atomic.Int32
	var asked []metrics.MetricQuery
	h.queries.metrics = rawKeyset(points, &calls, &asked)

	target := "/v1/metrics/heart_rate?bucket=raw&limit=3"
	var got []gen.MetricPoint
	for pages := 1; ; pages++ {
		require.LessOrEqual(t, pages, 4, "ten samples in pages of three take four pages")
		rec := h.do(req(http.MethodGet, target, nil, bearer(aliceToken)...))
		require.Equalf(t, http.StatusOK, rec.Code, "page %d: %s", pages, rec.Body)
		var page gen.MetricSeries
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		require.LessOrEqual(t, len(page.Points), 3, "page %d is larger than the limit", pages)
		got = append(got, page.Points...)
		if page.Next == nil {
			assert.Empty(t, rec.Header().Values("Link"), "the last page links nowhere")
			assert.Equal(t, 4, pages, "pages")
			break
		}
		assert.Equal(t, "<"+*page.Next+`>; rel="next"`, rec.Header().Get("Link"), "the Link header carries next")
		next, err := url.Parse(*page.Next)
		require.NoError(t, err)
		assert.Equal(t, "/v1/metrics/heart_rate", next.Path, "next is an absolute path on the same route")
		assert.Equal(t, url.Values{
			"bucket": {"raw"}, "limit": {"3"},
			"from": {testNow.AddDate(0, 0, -7).Format(time.RFC3339Nano)}, "to": {testNow.Format(time.RFC3339Nano)},
			"cursor": {next.Query().Get("cursor")},
		}, next.Query(), "next keeps the query and fixes the defaulted range")
		target = *page.Next
	}

	require.Len(t, got, len(points), "samples across pages: %+v", got)
	for i, p := range got {
		assert.Truef(t, p.Start.Equal(points[i].Start) && p.Source != nil && *p.Source == points[i].Source,
			"sample %d: %v %v, want %v %s (each once, in series order)", i, p.Start, p.Source, points[i].Start, points[i].Source)
	}
	for i, q := range asked {
		assert.Equal(t, 3, q.Limit, "read %d: the page size asked for", i)
		if i == 0 {
			assert.Nil(t, q.After, "the first page starts at from")
			continue
		}
		last := points[3*i-1]
		require.NotNil(t, q.After, "read %d continues", i)
		assert.Truef(t, q.After.Start.Equal(last.Start) && q.After.End.Equal(last.End) && q.After.Source == last.Source,
			"read %d continues after %+v, want after the last sample of the page before (%v %v %s): the cursor keeps microseconds", i, *q.After, last.Start, last.End, last.Source)
	}

	asked = nil
	rec := h.do(req(http.MethodGet, "/v1/metrics/heart_rate?bucket=raw", nil, bearer(aliceToken)...))
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	assert.Equal(t, queries.DefaultRawPage, asked[0].Limit, "without limit a page holds the default")
	assert.NotContains(t, rec.Body.String(), `"next"`, "ten samples fit one default page")
}

// A sleep list longer than a page is read by following `next`: every
// session once, also sessions that end at the same instant.
func TestASleepListLongerThanAPageIsReadByFollowingNext(t *testing.T) {
	h := newHarness(t)
	wake := time.Date(2026, 11, 18, 7, 0, 0, 0, time.UTC)
	var sessions []metrics.SleepSession
	for n := range 3 {
		end := wake.AddDate(0, 0, n)
		for _, s := range []struct {
			start  time.Time
			source string
		}{{end.Add(-8 * time.Hour), "oura/ring"}, {end.Add(-7 * time.Hour), "apple_health/watch"}} {
			sessions = append(sessions, metrics.SleepSession{Start: s.start, End: end, Date: end.Format(time.DateOnly), Source: s.source, AlgorithmVersion: 1})
		}
	}
	slices.SortFunc(sessions, func(a, b metrics.SleepSession) int {
		return cmp.Or(a.End.Compare(b.End), a.Start.Compare(b.Start), cmp.Compare(a.Source, b.Source))
	})
	h.queries.sleep = func(_ context.Context, q metrics.SleepQuery) (metrics.SleepPage, error) {
		out := metrics.SleepPage{Sessions: []metrics.SleepSession{}}
		for _, s := range sessions {
			if a := q.After; a != nil && cmp.Or(s.End.Compare(a.End), s.Start.Compare(a.Start), cmp.Compare(s.Source, a.Source)) <= 0 {
				continue
			}
			if len(out.Sessions) == q.Limit {
				last := out.Sessions[len(out.Sessions)-1]
				out.Next = &metrics.SleepKey{End: last.End, Start: last.Start, Source: last.Source}
				break
			}
			out.Sessions = append(out.Sessions, s)
		}
		return out, nil
	}

	target := "/v1/sleep/sessions?limit=4&from=2026-11-01T00:00:00%2B09:00"
	var got []gen.SleepSessionView
	for pages := 1; ; pages++ {
		require.LessOrEqual(t, pages, 2, "six sessions in pages of four take two pages")
		rec := h.do(req(http.MethodGet, target, nil, bearer(aliceToken)...))
		require.Equalf(t, http.StatusOK, rec.Code, "page %d: %s", pages, rec.Body)
		var page gen.SleepSessionList
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		got = append(got, page.Sessions...)
		if page.Next == nil {
			assert.Empty(t, rec.Header().Values("Link"), "the last page links nowhere")
			break
		}
		assert.Equal(t, "<"+*page.Next+`>; rel="next"`, rec.Header().Get("Link"), "the Link header carries next")
		next, err := url.Parse(*page.Next)
		require.NoError(t, err)
		assert.Equal(t, "2026-11-01T00:00:00+09:00", next.Query().Get("from"), "next keeps from as the caller wrote it")
		assert.Equal(t, testNow.Format(time.RFC3339Nano), next.Query().Get("to"), "next fixes the defaulted to")
		target = *page.Next
	}
	require.Len(t, got, len(sessions), "sessions across pages")
	for i, s := range got {
		assert.Truef(t, s.Start.Equal(sessions[i].Start) && s.End.Equal(sessions[i].End) && s.Source == sessions[i].Source, "session %d: %+v, want %+v", i, s, sessions[i])
	}
}

// A cursor is opaque and tamper-evident: one that is not an unaltered
// cursor of this API is 400 naming /cursor, a genuine one sent with
// another query (another caller, type, range, bucket or endpoint) is 422
// naming /cursor, and page sizes outside the published bounds are 422
// naming /limit. None of them reaches the read model.
func TestACursorThatWasAlteredOrContinuesAnotherQueryIsAProblemNamingCursor(t *testing.T) {
	var points []metrics.MetricPoint
	for i := range 5 {
		start := testNow.Add(-time.Hour + time.Duration(i)*time.Minute)
		points = append(points, metrics.MetricPoint{Start: start, End: start.Add(time.Minute), Value: 60, Min: 60, Max: 60, Count: 1, Source: "oura/ring"})
	}
	firstPage := func(h *harness) string {
		t.Helper()
		var calls atomic.Int32
		var asked []metrics.MetricQuery
		h.queries.metrics = rawKeyset(points, &calls, &asked)
		rec := h.do(req(http.MethodGet, "/v1/metrics/heart_rate?bucket=raw&limit=2&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z", nil, bearer(aliceToken)...))
		require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		var page gen.MetricSeries
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		require.NotNil(t, page.Next, "two of five samples leave a next page")
		next, err := url.Parse(*page.Next)
		require.NoError(t, err)
		return next.Query().Get("cursor")
	}
	cursor := firstPage(newHarness(t))
	altered := []byte(cursor)
	altered[len(altered)/2] = map[bool]byte{true: 'B', false: 'A'}[altered[len(altered)/2] == 'A']
	otherKey := firstPage(newHarness(t, func(_ *Config, d *Deps) {
		d.Queries.CursorKey = []byte("another deployment's page cursor key....")
	}))

	series := "/v1/metrics/heart_rate?bucket=raw&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&cursor="
	cases := []struct {
		name, token, target string
		status              int
		slug, field         string
	}{
		{"garbled", aliceToken, series + "not-a-cursor%21", 400, "malformed-request", "/cursor"},
		{"one character changed", aliceToken, series + string(altered), 400, "malformed-request", "/cursor"},
		{"truncated", aliceToken, series + cursor[:len(cursor)-4], 400, "malformed-request", "/cursor"},
		{"too long", aliceToken, series + strings.Repeat("A", queries.MaxCursorLength+1), 400, "malformed-request", "/cursor"},
		{"signed with another key", aliceToken, series + otherKey, 400, "malformed-request", "/cursor"},
		{"another caller", bobToken, series + cursor, 422, "validation", "/cursor"},
		{"another metric type", aliceToken, strings.Replace(series, "heart_rate", "steps", 1) + cursor, 422, "validation", "/cursor"},
		{"another range", aliceToken, strings.Replace(series, "2026-11-21T00", "2026-11-20T12", 1) + cursor, 422, "validation", "/cursor"},
		{"the same range in another zone is the same query", aliceToken, strings.Replace(series, "2026-11-20T00:00:00Z", "2026-11-20T09:00:00%2B09:00", 1) + cursor, 200, "", ""},
		{"a day series", aliceToken, strings.Replace(series, "bucket=raw", "bucket=day", 1) + cursor, 422, "validation", "/cursor"},
		{"the sleep list", aliceToken, "/v1/sleep/sessions?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&cursor=" + cursor, 422, "validation", "/cursor"},
		{"limit with an hour series", aliceToken, "/v1/metrics/heart_rate?bucket=hour&limit=10", 422, "validation", "/limit"},
		{"limit 0", aliceToken, "/v1/metrics/heart_rate?bucket=raw&limit=0", 422, "validation", "/limit"},
		{"limit over the raw maximum", aliceToken, "/v1/metrics/heart_rate?bucket=raw&limit=50001", 422, "validation", "/limit"},
		{"limit not a number", aliceToken, "/v1/metrics/heart_rate?bucket=raw&limit=all", 400, "malformed-request", "/limit"},
		{"limit over the sleep maximum", aliceToken, "/v1/sleep/sessions?limit=5001", 422, "validation", "/limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var calls atomic.Int32
			var asked []metrics.MetricQuery
			h.queries.metrics = rawKeyset(points, &calls, &asked)
			rec := h.do(req(http.MethodGet, tc.target, nil, bearer(tc.token)...))
			if tc.status == http.StatusOK {
				require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
				require.Len(t, asked, 1, "reads")
				assert.Truef(t, asked[0].After != nil && asked[0].After.Start.Equal(points[1].Start), "continues after the second sample: %+v", asked[0].After)
				return
			}
			hasField(t, problemOf(t, rec, tc.status, tc.slug), tc.field)
			assert.Zero(t, calls.Load(), "a refused page never reaches the read model")
		})
	}
}

// The page sizes the spec publishes are the ones served: its maxima are
// the read model's bounds, its defaults the handlers'.
func TestThePageSizesOfTheSpecAreTheOnesServed(t *testing.T) {
	spec := loadSpecFile(t)
	limit := func(path string) (maximum float64, def any) {
		t.Helper()
		op := spec.Paths.Find(path).Get
		require.NotNil(t, op, "GET %s", path)
		p := op.Parameters.GetByInAndName("query", "limit")
		require.NotNil(t, p, "GET %s has a limit", path)
		s := p.Schema.Value
		require.NotNil(t, s.Max, "GET %s: limit has a maximum", path)
		assert.Equal(t, 1.0, *s.Min, "GET %s: limit minimum", path)
		return *s.Max, s.Default
	}
	maxRaw, defRaw := limit("/v1/metrics/{type}")
	assert.Equal(t, float64(metrics.MaxRawPage), maxRaw, "raw series: the spec's maximum is the read model's bound")
	assert.EqualValues(t, queries.DefaultRawPage, defRaw, "raw series: the spec's default is the handler's")
	maxSleep, defSleep := limit("/v1/sleep/sessions")
	assert.Equal(t, float64(metrics.MaxSleepPage), maxSleep, "sleep list: the spec's maximum is the read model's bound")
	assert.EqualValues(t, queries.DefaultSleepPage, defSleep, "sleep list: the spec's default is the handler's")
}

// readModel serves metric series and sleep lists from the real metrics
// read model and everything else from the harness's fakes.
type readModel struct {
	queries.Reader
	metrics *metrics.Reader
}

func (r readModel) Metrics(ctx context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error) {
	return r.metrics.Metrics(ctx, q)
}

func (r readModel) SleepSessions(ctx context.Context, q metrics.SleepQuery) (metrics.SleepPage, error) {
	return r.metrics.SleepSessions(ctx, q)
}

// Over HTTP against the metrics read model in PostgreSQL: following next
// returns every stored sample and session exactly once, with positions
// carried through cursors to the microsecond and ties on start (raw) and
// end (sleep) split across pages.
func TestFollowingNextReturnsEveryStoredRowOnce(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	s.Register(t, alice, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	first := time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return first.Add(d).Format(time.RFC3339Nano) }
	for _, src := range []ingest.Source{{Provider: "apple_health", Device: "watch"}, {Provider: "oura", Device: "ring"}} {
		var samples []ingest.Sample
		var nights []ingest.SleepSession
		for i := range 7 {
			start := time.Duration(i)*time.Minute + time.Duration(i*1013)*time.Microsecond
			samples = append(samples,
				projectiontest.Sample("heart_rate", at(start), at(start+time.Minute), float64(60+i), "bpm"),
				projectiontest.Sample("heart_rate", at(start), at(start+2*time.Minute), float64(70+i), "bpm"))
			end := first.AddDate(0, 0, -i)
			begin := end.Add(-7*time.Hour - time.Duration(len(src.Device))*time.Minute)
			nights = append(nights, ingest.SleepSession{Start: begin.Format(time.RFC3339), End: end.Format(time.RFC3339),
				Stages: []ingest.Stage{{Stage: "light", Start: begin.Format(time.RFC3339), End: end.Format(time.RFC3339)}}})
		}
		s.Push(t, alice, ingest.Batch{Source: src, Samples: samples, SleepSessions: nights})
	}
	m := &metrics.Projector{}
	rctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	rt := s.Runtime(m, 500)
	go func() { _ = rt.Run(rctx) }()
	s.WaitCaughtUp(t, m)
	h := newHarness(t, func(_ *Config, d *Deps) {
		d.Queries.Reader = readModel{Reader: d.Queries.Reader, metrics: &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions}}
	})

	follow := func(target string, rows func([]byte) []string) []string {
		t.Helper()
		var got []string
		for pages := 1; target != ""; pages++ {
			require.LessOrEqual(t, pages, 20, "pages")
			rec := h.do(req(http.MethodGet, target, nil, bearer(aliceToken)...))
			require.Equalf(t, http.StatusOK, rec.Code, "%s: %s", target, rec.Body)
			got = append(got, rows(rec.Body.Bytes())...)
			var next struct{ Next *string }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &next))
			target = ""
			if next.Next != nil {
				target = *next.Next
			}
		}
		return got
	}
	stored := func(query string) []string {
		t.Helper()
		rows, err := s.Pool.Query(ctx, query, alice)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var a, b time.Time
			var src string
			require.NoError(t, rows.Scan(&a, &b, &src))
			out = append(out, a.UTC().Format(time.RFC3339Nano)+" "+b.UTC().Format(time.RFC3339Nano)+" "+src)
		}
		require.NoError(t, rows.Err())
		return out
	}

	samples := follow("/v1/metrics/heart_rate?bucket=raw&limit=3&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z", func(body []byte) []string {
		var page gen.MetricSeries
		require.NoError(t, json.Unmarshal(body, &page))
		var out []string
		for _, p := range page.Points {
			out = append(out, p.Start.UTC().Format(time.RFC3339Nano)+" "+p.End.UTC().Format(time.RFC3339Nano)+" "+*p.Source)
		}
		return out
	})
	want := stored(`SELECT start_at, end_at, source FROM samples_g1 WHERE user_id = $1 AND type = 'heart_rate' ORDER BY start_at, end_at, source`)
	require.Len(t, want, 28, "stored samples")
	assert.Equal(t, want, samples, "every stored sample once, in series order")

	nights := follow("/v1/sleep/sessions?limit=3&from=2026-11-01T00:00:00Z&to=2026-11-21T00:00:00Z", func(body []byte) []string {
		var page gen.SleepSessionList
		require.NoError(t, json.Unmarshal(body, &page))
		var out []string
		for _, n := range page.Sessions {
			out = append(out, n.End.UTC().Format(time.RFC3339Nano)+" "+n.Start.UTC().Format(time.RFC3339Nano)+" "+n.Source)
		}
		return out
	})
	want = stored(`SELECT end_at, start_at, source FROM sleep_sessions_g1 WHERE user_id = $1 ORDER BY end_at, start_at, source`)
	require.Len(t, want, 14, "stored sessions")
	assert.Equal(t, want, nights, "every stored session once, in list order")
}
