package provider

// Score is a provider's own score for a local day (Oura readiness, sleep
// and activity scores; later WHOOP recovery and strain). Scores are kept
// beside BioSync's values, never mixed into a canonical metric type: they
// are the provider's algorithm, not a measurement.
type Score struct {
	Provider Name    `json:"provider"`
	Kind     string  `json:"kind"` // "readiness", "sleep", "activity"
	Day      string  `json:"day"`  // the provider's local date, YYYY-MM-DD
	Value    float64 `json:"value"`
}
