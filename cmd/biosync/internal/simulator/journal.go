package simulator

import (
	"math/rand/v2"
	"time"
)

// journalStream and workoutStream separate the journal's and the
// workouts' random streams from the per-day and night-plan streams
// callers derive from the same Profile.Seed.
const (
	journalStream = 0x6a6f75726e616c // "journal"
	workoutStream = 0x776f726b6f7574 // "workout"
)

// workedOut tells whether the user of p runs on the local day day; the
// day's samples and its journal entry agree on it.
func workedOut(p Profile, day time.Time) bool {
	rng := rand.New(rand.NewPCG(p.Seed^workoutStream, uint64(dayNumber(day.In(p.loc())))))
	return rng.Float64() < p.WorkoutProb
}

// JournalTag is one tag of a journal entry as the API takes it.
type JournalTag struct {
	Name   string  `json:"name"`
	Amount float64 `json:"amount"`
}

// JournalEntry is the body of POST /v1/journal/entries.
type JournalEntry struct {
	Date   string       `json:"date"`
	Tags   []JournalTag `json:"tags"`
	Mood   int          `json:"mood"`
	Energy int          `json:"energy"`
	Stress int          `json:"stress"`
}

// GenerateJournal writes what the user of p would log about the local day
// day: coffee most days (sometimes after 2 pm), drinks on some evenings
// (more often on Fridays and Saturdays), workouts about as often as the
// profile works out (on the days its samples show a run), late meals,
// screens before bed, meditation for the users who meditate, and mood,
// energy and stress ratings that move with them. It depends only on p and
// the date, so reruns with one seed agree, and GenerateDay reads it to
// plant the effects of drinks and late meals on the following night.
func GenerateJournal(p Profile, day time.Time) JournalEntry {
	rng := rand.New(rand.NewPCG(p.Seed^journalStream, uint64(dayNumber(day.In(p.loc())))))
	meditator := p.Seed%3 == 0
	e := JournalEntry{Date: day.In(p.loc()).Format(time.DateOnly), Tags: []JournalTag{}}
	add := func(name string, amount float64) { e.Tags = append(e.Tags, JournalTag{Name: name, Amount: amount}) }
	mood, energy, stress := 6.0+rng.NormFloat64(), 6.0+rng.NormFloat64(), 4.0+1.5*rng.NormFloat64()
	if rng.Float64() < 0.85 {
		add("caffeine", float64(1+rng.IntN(3)))
		if rng.Float64() < 0.25 {
			add("caffeine_after_2pm", 1)
		}
	}
	drinkChance := 0.15
	if wd := day.In(p.loc()).Weekday(); wd == time.Friday || wd == time.Saturday {
		drinkChance = 0.5
	}
	if rng.Float64() < drinkChance {
		drinks := 1 + rng.IntN(4)
		add("alcohol_drinks", float64(drinks))
		mood += 0.5
		stress -= 0.5
	}
	if workedOut(p, day) {
		add("hard_workout", 1)
		energy += 1
		stress -= 1
	}
	if rng.Float64() < 0.2 {
		add("late_meal", 1)
	}
	if rng.Float64() < 0.4 {
		add("screen_time_before_bed", float64(15*(1+rng.IntN(6))))
	}
	if meditator && rng.Float64() < 0.6 {
		add("meditation", float64(10+5*rng.IntN(3)))
		stress -= 1
	}
	e.Mood, e.Energy, e.Stress = rating(mood), rating(energy), rating(stress)
	return e
}

// rating rounds x to a rating from 1 to 10.
func rating(x float64) int { return int(clamp(x+0.5, 1, 10)) }

// amount is the logged amount of tag name (0 when it is not logged).
func (e JournalEntry) amount(name string) float64 {
	for _, t := range e.Tags {
		if t.Name == name {
			return t.Amount
		}
	}
	return 0
}
