package ouratest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"
)

// StartOn runs a fake Oura on ln (a fixed address the server under test is
// configured with, as `biosync simulate --provider oura` needs).
func StartOn(ln net.Listener, clientID, clientSecret string) *Server {
	s := Start(clientID, clientSecret)
	// Move the handler onto a server listening on ln.
	h := s.Config.Handler
	s.Close()
	s.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	s.Start()
	return s
}

// AddHistory stores days of plausible documents for userID ending
// yesterday in loc, in the shapes Oura returns: daily_activity,
// daily_readiness, daily_spo2, a long_sleep night with its 5-minute
// hypnogram ending on each day, and hourly heart rate rows. seed makes
// it reproducible.
func (s *Server) AddHistory(userID string, days int, loc *time.Location, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	y, m, d := time.Now().In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	for i := days; i >= 1; i-- {
		day := today.AddDate(0, 0, -i)
		date := day.Format(time.DateOnly)
		_, off := day.Zone()
		stamp := day.Format("2006-01-02T15:04:05-07:00")
		steps := 5000 + r.IntN(8000)
		s.AddDocument(userID, "daily_activity", []byte(fmt.Sprintf(
			`{"id":"act-%s","day":"%s","timestamp":"%s","score":%d,"active_calories":%d,"steps":%d,"total_calories":%d,"class_5_min":"0"}`,
			date, date, day.Add(4*time.Hour).Format("2006-01-02T15:04:05-07:00"), 60+r.IntN(40), 200+steps/25, steps, 1900+steps/20)))
		s.AddDocument(userID, "daily_readiness", []byte(fmt.Sprintf(
			`{"id":"rd-%s","day":"%s","timestamp":"%s","score":%d,"temperature_deviation":%.2f,"temperature_trend_deviation":0.05}`,
			date, date, stamp, 60+r.IntN(40), r.Float64()*0.6-0.3)))
		s.AddDocument(userID, "daily_spo2", []byte(fmt.Sprintf(`{"id":"spo2-%s","day":"%s","spo2_percentage":{"average":%.1f}}`, date, date, 94+r.Float64()*4)))
		start := day.Add(-time.Duration(60+r.IntN(90)) * time.Minute) // the evening before
		phases := hypnogram(r)
		end := start.Add(time.Duration(len(phases)) * 5 * time.Minute)
		s.AddDocument(userID, "sleep", []byte(fmt.Sprintf(
			`{"id":"sleep-%s","type":"long_sleep","day":"%s","bedtime_start":"%s","bedtime_end":"%s","average_hrv":%d,"lowest_heart_rate":%d,"average_breath":%.1f,"sleep_phase_5_min":"%s"}`,
			date, date, start.In(time.FixedZone("", off)).Format(time.RFC3339), end.In(time.FixedZone("", off)).Format(time.RFC3339),
			30+r.IntN(50), 45+r.IntN(15), 12+r.Float64()*4, phases)))
		for h := 8; h < 22; h++ {
			at := day.Add(time.Duration(h) * time.Hour).UTC().Format(time.RFC3339)
			s.AddDocument(userID, "heartrate", []byte(fmt.Sprintf(`{"bpm":%d,"source":"awake","timestamp":"%s"}`, 60+r.IntN(40), at)))
		}
	}
}

// hypnogram is a night of about 7-8 hours in 5-minute phases: falling
// asleep, then cycles of light, deep and REM, a short wake at the end.
func hypnogram(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString(strings.Repeat("4", 1+r.IntN(3)))
	for c := 0; c < 5; c++ {
		b.WriteString(strings.Repeat("2", 6+r.IntN(6)))
		b.WriteString(strings.Repeat("1", max(1, 6-c)+r.IntN(4)))
		b.WriteString(strings.Repeat("3", 2+c+r.IntN(3)))
	}
	b.WriteString(strings.Repeat("4", 1+r.IntN(2)))
	return b.String()
}
