package main

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
)

// roundTripLayouts are the timestamp spellings the fuzzer writes: RFC
// 3339 in its forms, and near misses the parser must refuse or read right.
var roundTripLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.000Z07:00",
	"2006-01-02t15:04:05z07:00",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05",
}

var roundTripUsers atomic.Int64

// FuzzAcceptedPushesReadBack is issue 9's round trip over the whole input
// space of one sample (and optionally one sleep session): any push the API
// accepts (202) must read back through every query that covers it (raw,
// hour and day buckets, the dashboard, the sleep list) with the values
// the domain's normalisation gives, and anything it does not accept must
// be a 4xx problem, never a 5xx. One fresh user per input, against the
// real server on the stand-ins (or real services in CI).
//
// `make test` runs the committed corpus (testdata/fuzz) and a bounded
// fuzzing budget (`make fuzz-roundtrip`); a longer run:
// go test -run '^$' -fuzz FuzzAcceptedPushesReadBack -fuzztime 10m ./cmd/biosync/
func FuzzAcceptedPushesReadBack(f *testing.F) {
	// Types are indexed in name order: 0 active_energy, 1 distance,
	// 2 heart_rate, 3 hrv_rmssd, 4 hrv_sdnn, 5 resting_heart_rate,
	// 6 respiratory_rate, 7 skin_temperature_deviation, 8 spo2, 9 steps,
	// 10 weight; units in name order within the type.
	f.Add(uint8(9), uint8(0), 1234.0, int64(-3600), uint32(0), int16(60), uint8(0), uint32(900), uint8(0), "watch", "")
	f.Add(uint8(10), uint8(1), 154.3, int64(-86400), uint32(0), int16(-300), uint8(1), uint32(0), uint8(3), "scale", "bath")
	f.Add(uint8(2), uint8(0), 61.5, int64(-7200), uint32(500_000_000), int16(24*60), uint8(1), uint32(60), uint8(0), "ring", "")
	f.Add(uint8(2), uint8(0), 61.5, int64(-7200), uint32(500_000_000), int16(14*60), uint8(1), uint32(60), uint8(4), "ring", "")
	f.Add(uint8(7), uint8(1), -0.4, int64(-40000), uint32(0), int16(0), uint8(0), uint32(300), uint8(3), "ring", "gen3")
	f.Add(uint8(3), uint8(0), 42.0, int64(9999*365*86400), uint32(0), int16(-23*60-59), uint8(0), uint32(0), uint8(0), "x", "")
	f.Add(uint8(3), uint8(0), 42.0, int64(2*86400), uint32(0), int16(0), uint8(0), uint32(0), uint8(0), "x", "")
	f.Add(uint8(0), uint8(0), 418.4, int64(-1_700_000_000), uint32(1), int16(18*60), uint8(2), uint32(3600), uint8(2), "phone", "")
	f.Add(uint8(5), uint8(0), 0.0, int64(-60), uint32(0), int16(330), uint8(5), uint32(60), uint8(0), "p\xffq", "")
	f.Add(uint8(1), uint8(0), math.Inf(1), int64(-60), uint32(0), int16(0), uint8(0), uint32(60), uint8(0), "strap", "")
	f.Add(uint8(1), uint8(1), 5.25, int64(-60), uint32(0), int16(-9*60-30), uint8(3), uint32(60), uint8(0), "strap", "")
	f.Add(uint8(3), uint8(0), 55.0, int64(-3*86400), uint32(0), int16(-8*60), uint8(1), uint32(120), uint8(13), "watch", "")
	f.Add(uint8(8), uint8(0), 97.0, int64(-5*86400), uint32(0), int16(0), uint8(6), uint32(120), uint8(0), "watch", "")

	s := startServer(f, backendEnv(f))
	f.Cleanup(s.stop)
	ready := time.Now()
	types := metric.Types()
	slices.Sort(types)

	f.Fuzz(func(t *testing.T, typIdx, unitIdx uint8, value float64, offsetSecs int64, nanos uint32, zoneMin int16, layoutIdx uint8, durSecs uint32, sleepShape uint8, provider, device string) {
		def, _ := metric.Lookup(types[int(typIdx)%len(types)])
		units := make([]string, 0, len(def.Accepts))
		for u := range def.Accepts {
			units = append(units, u)
		}
		slices.Sort(units)
		unit := units[int(unitIdx)%len(units)]
		zone := time.FixedZone("", int(zoneMin)*60)
		layout := roundTripLayouts[int(layoutIdx)%len(roundTripLayouts)]
		start := time.Unix(ready.Unix()+offsetSecs, int64(nanos%1_000_000_000)).In(zone)
		end := start.Add(time.Duration(durSecs%(4*3600)) * time.Second)
		ts := func(x time.Time) string { return x.Format(layout) }
		num := strconv.FormatFloat(value, 'g', -1, 64)
		if math.IsInf(value, 0) || math.IsNaN(value) {
			num = fmt.Sprint(value) // not JSON: must be a 400
		}
		source := fmt.Sprintf(`{"provider":%q`, provider)
		if provider != "" && !strings.ContainsRune(provider, 0xFFFD) {
			source = `{"provider":"` + jsonRaw(provider) + `"`
		}
		if device != "" {
			source += `,"device":"` + jsonRaw(device) + `"`
		}
		source += "}"
		body := fmt.Sprintf(`{"source":%s,"samples":[{"type":%q,"start":%q,"end":%q,"value":%s,"unit":%q}]`, source, def.Type, ts(start), ts(end), num, unit)
		if n := int(sleepShape % 5); n > 0 {
			// n stages back to back from the sample's end; bit 3 makes the
			// last one overlap the one before (must be refused).
			stageNames := []string{"light", "deep", "rem", "awake"}
			at := end
			var stages []string
			for i := range n {
				next := at.Add(time.Duration(20+10*i) * time.Minute)
				from := at
				if i == n-1 && sleepShape&8 != 0 && i > 0 {
					from = at.Add(-5 * time.Minute)
				}
				stages = append(stages, fmt.Sprintf(`{"stage":%q,"start":%q,"end":%q}`, stageNames[(i+int(sleepShape>>4))%4], ts(from), ts(next)))
				at = next
			}
			body += fmt.Sprintf(`,"sleep_sessions":[{"start":%q,"end":%q,"stages":[%s]}]`, ts(end), ts(at), strings.Join(stages, ","))
		}
		body += "}"

		c := &client{t: t, base: s.url}
		email := fmt.Sprintf("roundtrip-%d-%d@example.com", os.Getpid(), roundTripUsers.Add(1))
		code, _, reg := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "UTC"}, nil)
		require.Equal(t, 201, code, "register: %v", reg)
		_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
		c.token, _ = login["access_token"].(string)
		require.NotEmpty(t, c.token, "login: %v", login)

		code, h, out := c.do("POST", "/v1/me/samples", []byte(body), nil)
		require.Less(t, code, 500, "push answered %d for %s: %v", code, body, out)
		if code != 202 {
			require.Contains(t, []int{400, 422}, code, "a refused push is a 400 or 422 problem: %s -> %v", body, out)
			require.NotEmpty(t, out["type"], "a refused push is a problem document: %v", out)
			t.Logf("refused %d %v: %s", code, out["errors"], body)
			return
		}
		t.Logf("accepted: %s", body)
		// What the domain says was accepted, and so what must read back.
		batch, err := ingest.Parse([]byte(body), false, time.Now().Add(48*time.Hour))
		require.NoError(t, err, "the API accepted a body the domain parser refuses: %s", body)
		points, nights, skipped := ingest.Normalize(batch)
		require.Zero(t, skipped, "an accepted body normalised with items skipped: %s", body)
		require.Len(t, points, 1, body)
		p := points[0]
		wait := map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")}
		epoch := time.Unix(0, 0).UTC()
		window := func(at time.Time, d time.Duration) string {
			from := at.Add(-d)
			if from.Before(epoch) {
				from = epoch
			}
			return "from=" + url.QueryEscape(from.UTC().Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(at.Add(d).UTC().Format(time.RFC3339Nano))
		}
		for _, bucket := range []string{"raw", "hour", "day"} {
			path := "/v1/metrics/" + string(p.Type) + "?bucket=" + bucket + "&" + window(p.Start, 36*time.Hour)
			code, _, series := c.do("GET", path, nil, wait)
			require.Equal(t, 200, code, "%s after accepting %s: %v", path, body, series)
			pts, _ := series["points"].([]any)
			require.Len(t, pts, 1, "%s after accepting %s: %v", path, body, series)
			got := pts[0].(map[string]any)
			assert.InDeltaf(t, p.Value, got["value"].(float64), 1e-9*math.Max(1, math.Abs(p.Value)), "%s value after accepting %s", path, body)
			assert.Equalf(t, float64(1), got["count"], "%s count", path)
			if bucket == "raw" {
				gotStart, err := time.Parse(time.RFC3339Nano, got["start"].(string))
				require.NoError(t, err)
				assert.Truef(t, gotStart.Equal(p.Start.Truncate(time.Microsecond)), "%s start %v, pushed %v", path, gotStart, p.Start)
			}
		}
		code, _, dash := c.do("GET", "/v1/dashboard/summary", nil, wait)
		require.Equal(t, 200, code, "dashboard after accepting %s: %v", body, dash)
		if len(nights) == 1 {
			n := nights[0]
			path := "/v1/sleep/sessions?" + window(n.End, 36*time.Hour)
			code, _, list := c.do("GET", path, nil, wait)
			require.Equal(t, 200, code, "%s after accepting %s: %v", path, body, list)
			sessions, _ := list["sessions"].([]any)
			require.Len(t, sessions, 1, "%s after accepting %s: %v", path, body, list)
			got := sessions[0].(map[string]any)
			for _, stage := range []string{"awake", "light", "deep", "rem"} {
				assert.InDeltaf(t, n.StageMinutes[stage], got[stage+"_minutes"].(float64), 1e-6, "%s minutes after accepting %s", stage, body)
			}
			inBed := n.End.Sub(n.Start).Minutes()
			assert.InDeltaf(t, inBed, got["in_bed_minutes"].(float64), 1e-6, "in bed minutes after accepting %s", body)
			assert.LessOrEqualf(t, got["asleep_minutes"].(float64), got["in_bed_minutes"].(float64)+1e-9, "asleep longer than in bed after accepting %s", body)
		}
	})
}

// jsonRaw writes s into a JSON string as bytes, escaping only quotes,
// backslashes and control characters, so invalid UTF-8 reaches the server
// as sent (the decoder would otherwise see replacement characters).
func jsonRaw(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
