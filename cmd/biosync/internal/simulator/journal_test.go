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
