package simulator

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/journal"
)

// Simulated journals follow the API's rules, repeat with the seed, and
// look like people's: coffee most days, drinks more often at weekends.
func TestGeneratedJournalsAreValidRealisticAndRepeatable(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	p := NewProfile(rand.New(rand.NewPCG(7, 7)), loc)
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, loc)
	tagDays := map[string]int{}
	drinks := map[bool]int{} // weekend evening or not
	evenings := map[bool]int{}
	for i := range 120 {
		day := start.AddDate(0, 0, i)
		e := GenerateJournal(p, day)
		assert.Equal(t, e, GenerateJournal(p, day), "the same day twice")
		assert.Equal(t, day.Format(time.DateOnly), e.Date)
		entry := journal.Entry{Date: e.Date, Mood: &e.Mood, Energy: &e.Energy, Stress: &e.Stress}
		for _, tag := range e.Tags {
			entry.Tags = append(entry.Tags, journal.Tag{Name: tag.Name, Amount: tag.Amount})
			tagDays[tag.Name]++
		}
		v := &domain.ValidationError{}
		entry.Validate(v, day)
		require.NoError(t, v.Err(), "%+v", e)
		weekend := day.Weekday() == time.Friday || day.Weekday() == time.Saturday
		evenings[weekend]++
		for _, tag := range e.Tags {
			if tag.Name == "alcohol_drinks" {
				drinks[weekend]++
			}
		}
	}
	assert.Greater(t, tagDays["caffeine"], 80, "coffee on most of 120 days: %v", tagDays)
	assert.Greater(t, float64(drinks[true])/float64(evenings[true]), float64(drinks[false])/float64(evenings[false]),
		"drinks more often on Friday and Saturday evenings: %v of %v", drinks, evenings)
	assert.NotZero(t, tagDays["hard_workout"])
}

// Drinks logged in the evening leave their mark on that night: a higher
// resting heart rate and a lower HRV than nights after no drinks, and the
// journal's workouts are the days GenerateDay plans a run.
func TestDrinksLoggedInTheEveningShowInThatNight(t *testing.T) {
	loc, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	p := NewProfile(rand.New(rand.NewPCG(11, 3)), loc)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, loc)
	type sums struct{ rhr, hrv, n float64 }
	after := map[bool]*sums{true: {}, false: {}}
	for i := 1; i <= 240; i++ {
		day := start.AddDate(0, 0, i)
		drank := GenerateJournal(p, day.AddDate(0, 0, -1)).amount("alcohol_drinks") >= 2
		none := GenerateJournal(p, day.AddDate(0, 0, -1)).amount("alcohol_drinks") == 0
		if !drank && !none {
			continue
		}
		out := GenerateDay(p, day, day.AddDate(0, 0, 1), DayRand(p, day))
		s := after[drank]
		for _, m := range out.Samples {
			switch m.Type {
			case MetricRestingHeartRate:
				s.rhr += m.Value
				s.n++
			case MetricHRVRMSSD:
				s.hrv += m.Value
			}
		}
		logged := GenerateJournal(p, day).amount("hard_workout") > 0
		assert.Equal(t, workedOut(p, day), logged, "%s: the journal's workout is the day's run", day.Format(time.DateOnly))
	}
	require.NotZero(t, after[true].n, "no evening with two or more drinks in 240 days")
	require.NotZero(t, after[false].n)
	assert.Greater(t, after[true].rhr/after[true].n, after[false].rhr/after[false].n+2, "resting heart rate after drinks")
	assert.Less(t, after[true].hrv/after[true].n, 0.9*after[false].hrv/after[false].n, "HRV after drinks")
}
