package journal

// Suggestion is one tag of the suggested catalog a frontend offers: its
// name, how to show it, and what its amount counts ("" = times, for tags
// that simply happen).
type Suggestion struct {
	Name        string
	DisplayName string
	Unit        string
}

// Catalog is the suggested tags, the things people log most that are known
// to move sleep and recovery. Users may use any other valid name; these
// are the ones insights will know how to talk about.
var Catalog = []Suggestion{
	{"alcohol_drinks", "Alcohol", "drinks"},
	{"caffeine", "Caffeine", "cups"},
	{"caffeine_after_2pm", "Caffeine after 2 pm", "cups"},
	{"hard_workout", "Hard workout", ""},
	{"late_meal", "Late meal", ""},
	{"meditation", "Meditation", "minutes"},
	{"nap", "Nap", "minutes"},
	{"screen_time_before_bed", "Screens in the hour before bed", "minutes"},
	{"sauna", "Sauna", "minutes"},
	{"cold_exposure", "Cold exposure", "minutes"},
	{"melatonin", "Melatonin", "mg"},
	{"sleep_medication", "Sleep medication", ""},
	{"sick", "Feeling sick", ""},
	{"travel", "Travel", ""},
	{"late_work", "Worked late", ""},
	{"reading_before_bed", "Read before bed", "minutes"},
	{"sunlight_morning", "Morning sunlight", "minutes"},
	{"menstruation", "Menstruation", ""},
}
