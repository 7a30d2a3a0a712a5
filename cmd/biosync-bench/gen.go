package main

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/biosync/biosync/domain/ingest"
)

// slotStep is the time between two consecutive samples of one user: a
// wearable's five-minute cadence, so a local day holds a realistic number
// of samples per type and rollup recomputation costs what it costs in
// production.
const slotStep = 5 * time.Minute

// benchZones are the users' timezones (both hemispheres, DST and not, a
// half-hour offset), as the simulator uses.
var benchZones = []string{
	"Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London",
	"America/Los_Angeles", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo",
}

// sources are the devices a user's batches come from.
var sources = []ingest.Source{{Provider: "garmin", Device: "fenix-7"}, {Provider: "apple_health", Device: "iphone"}}

// intner is the part of *rand.Rand the generator uses; sharedRand
// implements it with math/rand/v2's goroutine-safe top-level functions.
type intner interface{ IntN(n int) int }

// sharedRand draws from math/rand/v2's top-level source (safe for
// concurrent use), for load generator goroutines without a source of their
// own.
type sharedRand struct{}

// IntN returns a random int in [0, n).
func (sharedRand) IntN(n int) int { return rand.IntN(n) }

// dataUser is one user's generator state: where their sample clock stands.
type dataUser struct {
	id   string
	zone string
	loc  *time.Location
	base time.Time    // time of slot 0
	slot atomic.Int64 // next free sample slot
}

// newDataUser starts a user's sample clock at base.
func newDataUser(id, zone string, base time.Time) (*dataUser, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, err
	}
	return &dataUser{id: id, zone: zone, loc: loc, base: base}, nil
}

// nextBatch returns a batch of 1..20 samples with fresh (never repeated)
// timestamps in the user's local offset, from one of two sources; about one
// batch in fifty carries a night of sleep. Types rotate through heart rate,
// steps, active energy, HRV and SpO2 with plausible values.
func (u *dataUser) nextBatch(rng intner, withUserID bool) ingest.Batch {
	n := 1 + rng.IntN(20)
	first := u.slot.Add(int64(n)) - int64(n)
	b := ingest.Batch{Source: sources[rng.IntN(len(sources))], Samples: make([]ingest.Sample, 0, n)}
	if withUserID {
		b.UserID = u.id
	}
	for i := range int64(n) {
		s := first + i
		t := u.base.Add(time.Duration(s) * slotStep).In(u.loc)
		start := t.Format(time.RFC3339)
		smp := ingest.Sample{Start: start, End: start}
		switch s % 5 {
		case 0:
			smp.Type, smp.Unit, smp.Value = "heart_rate", "bpm", float64(55+rng.IntN(90))
		case 1:
			smp.Type, smp.Unit, smp.Value = "steps", "count", float64(rng.IntN(600))
			smp.End = t.Add(slotStep).Format(time.RFC3339)
		case 2:
			smp.Type, smp.Unit, smp.Value = "active_energy", "kJ", float64(rng.IntN(200))+0.5
			smp.End = t.Add(slotStep).Format(time.RFC3339)
		case 3:
			smp.Type, smp.Unit, smp.Value = "hrv_rmssd", "ms", float64(20+rng.IntN(80))
		default:
			smp.Type, smp.Unit, smp.Value = "spo2", "%", float64(93+rng.IntN(7))
		}
		b.Samples = append(b.Samples, smp)
	}
	if rng.IntN(50) == 0 {
		wake := u.base.Add(time.Duration(first) * slotStep).In(u.loc)
		bed := wake.Add(-7*time.Hour - time.Duration(rng.IntN(90))*time.Minute)
		var stages []ingest.Stage
		names := []string{"light", "deep", "light", "rem", "awake"}
		for t, i := bed, 0; t.Before(wake); i++ {
			end := t.Add(time.Duration(20+rng.IntN(70)) * time.Minute)
			if end.After(wake) {
				end = wake
			}
			stages = append(stages, ingest.Stage{Stage: names[i%len(names)], Start: t.Format(time.RFC3339), End: end.Format(time.RFC3339)})
			t = end
		}
		b.SleepSessions = []ingest.SleepSession{{Start: bed.Format(time.RFC3339), End: wake.Format(time.RFC3339), Stages: stages}}
	}
	return b
}

// appendBatchJSON appends the JSON of b with encoding/json's field names
// and omissions (it decodes to the same Batch), without reflection: the load
// generator shares the CPUs with the servers it measures, so it should cost
// as little as possible per request.
func appendBatchJSON(dst []byte, b ingest.Batch) []byte {
	dst = append(dst, '{')
	if b.UserID != "" {
		dst = append(dst, `"user_id":`...)
		dst = appendString(dst, b.UserID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"source":{"provider":`...)
	dst = appendString(dst, b.Source.Provider)
	if b.Source.Device != "" {
		dst = append(dst, `,"device":`...)
		dst = appendString(dst, b.Source.Device)
	}
	dst = append(dst, `},"samples":`...)
	if b.Samples == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, s := range b.Samples {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":`...)
			dst = appendString(dst, s.Type)
			dst = append(dst, `,"start":`...)
			dst = appendString(dst, s.Start)
			dst = append(dst, `,"end":`...)
			dst = appendString(dst, s.End)
			dst = append(dst, `,"value":`...)
			dst = strconv.AppendFloat(dst, s.Value, 'f', -1, 64)
			dst = append(dst, `,"unit":`...)
			dst = appendString(dst, s.Unit)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"sleep_sessions":`...)
	if b.SleepSessions == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, ss := range b.SleepSessions {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"start":`...)
			dst = appendString(dst, ss.Start)
			dst = append(dst, `,"end":`...)
			dst = appendString(dst, ss.End)
			dst = append(dst, `,"stages":`...)
			if ss.Stages == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, '[')
				for j, st := range ss.Stages {
					if j > 0 {
						dst = append(dst, ',')
					}
					dst = append(dst, `{"stage":`...)
					dst = appendString(dst, st.Stage)
					dst = append(dst, `,"start":`...)
					dst = appendString(dst, st.Start)
					dst = append(dst, `,"end":`...)
					dst = appendString(dst, st.End)
					dst = append(dst, '}')
				}
				dst = append(dst, ']')
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string (quotes, backslashes and control
// characters escaped; other UTF-8 passes through).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(dst, '"')
}
