package oura_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/provider/oura"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func normalizeFile(t *testing.T, dataType string, zone *time.Location) oura.Normalized {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", dataType+".json"))
	require.NoError(t, err)
	n, err := oura.Normalize(dataType, raw, zone)
	require.NoError(t, err)
	return n
}

// Every record type has a golden mapping: the recorded shape in, the
// canonical batch and provider scores out.
func TestEveryRecordTypeMapsToItsGolden(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	for _, dt := range oura.DataTypes() {
		t.Run(dt, func(t *testing.T) {
			got, err := json.MarshalIndent(normalizeFile(t, dt, berlin), "", "  ")
			require.NoError(t, err)
			path := filepath.Join("testdata", dt+".golden.json")
			if *update {
				require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test ./domain/provider/oura -update to create it")
			assert.JSONEq(t, string(want), string(got))
		})
	}
}

// Every mapped batch passes the push rules, so the projector applies it
// like any push.
func TestEveryMappedBatchIsAValidPush(t *testing.T) {
	for _, dt := range oura.DataTypes() {
		n := normalizeFile(t, dt, time.UTC)
		if len(n.Batch.Samples)+len(n.Batch.SleepSessions) == 0 {
			assert.NotEmpty(t, n.Scores, "%s maps to nothing at all", dt)
			continue
		}
		assert.NoError(t, n.Batch.Validate(false, time.Time{}), dt)
		assert.Equal(t, "oura", n.Batch.Source.Provider)
	}
}

func TestDailyActivityIsStepsAndActiveCaloriesOverTheNamedLocalDay(t *testing.T) {
	n := normalizeFile(t, oura.DailyActivity, nil)
	require.Len(t, n.Batch.Samples, 2)
	assert.Equal(t, ingest.Sample{Type: "steps", Start: "2024-11-11T00:00:00+01:00", End: "2024-11-12T00:00:00+01:00", Value: 9386, Unit: "count"}, n.Batch.Samples[0])
	assert.Equal(t, ingest.Sample{Type: "active_energy", Start: "2024-11-11T00:00:00+01:00", End: "2024-11-12T00:00:00+01:00", Value: 412, Unit: "kcal"}, n.Batch.Samples[1])
	require.Len(t, n.Scores, 1)
	assert.Equal(t, "activity", n.Scores[0].Kind)
}

func TestSleepStagesComeFromTheFiveMinuteHypnogram(t *testing.T) {
	n := normalizeFile(t, oura.Sleep, nil)
	require.Len(t, n.Batch.SleepSessions, 1)
	s := n.Batch.SleepSessions[0]
	assert.Equal(t, "2024-10-10T01:01:59+02:00", s.Start)
	assert.Equal(t, "2024-10-10T07:01:59+02:00", s.End)
	require.NotEmpty(t, s.Stages)
	assert.Equal(t, ingest.Stage{Stage: "awake", Start: "2024-10-10T01:01:59+02:00", End: "2024-10-10T01:11:59+02:00"}, s.Stages[0])
	assert.Equal(t, "light", s.Stages[1].Stage)
	minutes := map[string]float64{}
	for _, st := range s.Stages {
		a, _ := time.Parse(time.RFC3339, st.Start)
		b, _ := time.Parse(time.RFC3339, st.End)
		minutes[st.Stage] += b.Sub(a).Minutes()
	}
	assert.Equal(t, 360.0, minutes["awake"]+minutes["light"]+minutes["deep"]+minutes["rem"], "72 five-minute phases cover the 6 h in bed")
	assert.Equal(t, 90.0, minutes["deep"])
}

func TestSleepKeepsRMSSDRestingHeartRateAndBreathingBesideTheSession(t *testing.T) {
	n := normalizeFile(t, oura.Sleep, nil)
	byType := map[string]ingest.Sample{}
	for _, s := range n.Batch.Samples {
		byType[s.Type] = s
	}
	assert.Equal(t, 48.0, byType["hrv_rmssd"].Value)
	assert.Equal(t, "ms", byType["hrv_rmssd"].Unit)
	assert.NotContains(t, byType, "hrv_sdnn", "Oura's HRV is RMSSD, never SDNN")
	assert.Equal(t, 49.0, byType["resting_heart_rate"].Value)
	assert.Equal(t, 14.625, byType["respiratory_rate"].Value)
}

func TestSleepWithoutAHypnogramLaysTheDurationsEndToEnd(t *testing.T) {
	raw := []byte(`{"type":"long_sleep","bedtime_start":"2024-10-10T23:00:00-04:00","bedtime_end":"2024-10-11T06:00:00-04:00","awake_time":1800,"light_sleep_duration":14400,"deep_sleep_duration":3600,"rem_sleep_duration":5400}`)
	n, err := oura.Normalize(oura.Sleep, raw, nil)
	require.NoError(t, err)
	stages := n.Batch.SleepSessions[0].Stages
	require.Len(t, stages, 4)
	assert.Equal(t, ingest.Stage{Stage: "rem", Start: "2024-10-11T04:30:00-04:00", End: "2024-10-11T06:00:00-04:00"}, stages[3])
}

func TestADeletedSleepDocumentSaysNothing(t *testing.T) {
	n, err := oura.Normalize(oura.Sleep, []byte(`{"type":"deleted","bedtime_start":"x"}`), nil)
	require.NoError(t, err)
	assert.Empty(t, n.Batch.SleepSessions)
	assert.Empty(t, n.Batch.Samples)
}

func TestHeartRateRowsAreUTCInstants(t *testing.T) {
	n := normalizeFile(t, oura.HeartRate, nil)
	require.Len(t, n.Batch.Samples, 3)
	assert.Equal(t, ingest.Sample{Type: "heart_rate", Start: "2024-11-11T06:01:30Z", End: "2024-11-11T06:01:30Z", Value: 61, Unit: "bpm"}, n.Batch.Samples[0])
}

func TestSpO2WithoutAnOffsetCoversTheDayInTheUsersZone(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	n := normalizeFile(t, oura.DailySpO2, tokyo)
	require.Len(t, n.Batch.Samples, 1)
	assert.Equal(t, ingest.Sample{Type: "spo2", Start: "2024-11-11T00:00:00+09:00", End: "2024-11-12T00:00:00+09:00", Value: 96.5, Unit: "%"}, n.Batch.Samples[0])
}

func TestReadinessScoreIsAProviderScoreAndTheTemperatureDeviationAMetric(t *testing.T) {
	n := normalizeFile(t, oura.DailyReadiness, nil)
	require.Len(t, n.Batch.Samples, 1)
	assert.Equal(t, "skin_temperature_deviation", n.Batch.Samples[0].Type)
	assert.Equal(t, -0.09, n.Batch.Samples[0].Value)
	require.Len(t, n.Scores, 1)
	assert.Equal(t, "readiness", n.Scores[0].Kind)
	assert.Equal(t, 83.0, n.Scores[0].Value)
}

func TestAnUnknownTypeIsReportedSoTheCallerSkipsIt(t *testing.T) {
	_, err := oura.Normalize("vO2_max", []byte(`{}`), nil)
	assert.True(t, errors.Is(err, oura.ErrUnknownType))
}

func TestAMalformedRecordIsAnError(t *testing.T) {
	_, err := oura.Normalize(oura.DailyActivity, []byte(`{"day":"yesterday"}`), nil)
	assert.Error(t, err)
}
