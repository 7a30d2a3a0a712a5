package ingest

import (
	"strings"
	"time"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
)

// EventDeleted is the stable type name of Deletion, the body of the event
// that removes a user's own data again.
const EventDeleted = "samples.deleted"

// SleepType is the deletion type that names sleep sessions, which are not a
// metric type: `type=sleep` deletes sleep sessions only.
const SleepType = "sleep"

// MaxDeletionSpan bounds the range of one deletion: the longest range a read
// shows (a day-bucket series), so a client deletes what it can see, and the
// work one event gives the projector stays bounded (a busy year of
// minute-level samples is about half a million rows). Larger ranges are
// deleted in several requests.
const MaxDeletionSpan = 400 * 24 * time.Hour

// Deletion is the body of samples.deleted (schema version 1): which of a
// user's data to remove. It selects the samples whose start lies in
// [From, To) and the sleep sessions whose start lies there, narrowed to one
// source provider (Provider, as sent in a push's source.provider; "" is
// every source, every device of a provider included) and one type (Type: a
// metric type deletes those samples only, SleepType sleep sessions only, ""
// both and every metric type). Like a push it is a request as made; the
// metrics projector decides which rows it removes: the ones that match and
// lie earlier in the log than the deletion, so data pushed after it stays.
type Deletion struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Provider string    `json:"provider,omitempty"`
	Type     string    `json:"type,omitempty"`
}

// Validate checks every rule and reports all broken ones, named as the
// request's query parameters (/from, /to, /source, /type): the range is
// [from, to), from before to, at most MaxDeletionSpan long, with offsets a
// log entry can carry (±18:00, as pushes); the provider follows the rules
// of a push's source.provider; the type is a metric type or SleepType.
func (d Deletion) Validate() error {
	v := &domain.ValidationError{}
	okFrom := checkBound(v, "/from", d.From)
	okTo := checkBound(v, "/to", d.To)
	switch {
	case !okFrom || !okTo:
	case !d.From.Before(d.To):
		v.Add("/from", "must be before to")
	case d.To.Sub(d.From) > MaxDeletionSpan:
		v.Add("/from", "the range from..to may span at most %d days", int(MaxDeletionSpan/(24*time.Hour)))
	}
	if d.Provider != "" {
		switch {
		case strings.TrimSpace(d.Provider) == "":
			v.Add("/source", "must not be blank (leave it out to delete every source)")
		case len(d.Provider) > 64:
			v.Add("/source", "is limited to 64 characters, like a push's source.provider")
		case !printable(d.Provider):
			v.Add("/source", "must not contain control characters")
		}
	}
	if d.Type != "" && d.Type != SleepType {
		if _, ok := metric.Lookup(metric.Type(d.Type)); !ok {
			v.Add("/type", "must be a metric type or %s", SleepType)
		}
	}
	return v.Err()
}

// checkBound reports a missing range bound or one whose offset no log
// entry may carry.
func checkBound(v *domain.ValidationError, field string, t time.Time) bool {
	if t.IsZero() {
		v.Add(field, "is required (RFC 3339 with offset)")
		return false
	}
	if _, off := t.Zone(); off > maxOffset || off < -maxOffset {
		v.Add(field, "has a UTC offset beyond ±18:00")
		return false
	}
	return true
}

// SampleTypes are the metric types whose samples the deletion removes:
// every known type without Type, none for SleepType.
func (d Deletion) SampleTypes() []metric.Type {
	switch d.Type {
	case "":
		return metric.Types()
	case SleepType:
		return nil
	}
	return []metric.Type{metric.Type(d.Type)}
}

// Sleep reports whether the deletion removes sleep sessions: without Type
// or with SleepType, never with a metric type.
func (d Deletion) Sleep() bool { return d.Type == "" || d.Type == SleepType }
