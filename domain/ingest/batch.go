package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
)

// MaxItems bounds samples plus sleep sessions in one batch so one command
// stays one Kafka record well under the broker's message size limit.
const MaxItems = 20000

// Source names where a batch came from; it is kept on every value so the
// winning source of a daily total is visible.
type Source struct {
	Provider string `json:"provider"`
	Device   string `json:"device,omitempty"`
}

// Sample is one measurement as sent: times stay strings so the sender's UTC
// offset (where the person was) survives in the log.
type Sample struct {
	Type  string  `json:"type"`
	Start string  `json:"start"`
	End   string  `json:"end"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Stage is one contiguous sleep stage.
type Stage struct {
	Stage string `json:"stage"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// SleepSession is one night (or nap) with its stages.
type SleepSession struct {
	Start  string  `json:"start"`
	End    string  `json:"end"`
	Stages []Stage `json:"stages"`
}

// Batch is the push body. UserID is present on the server-to-server webhook
// and absent on the bearer-token endpoint (the token names the user).
type Batch struct {
	UserID        string         `json:"user_id,omitempty"`
	Source        Source         `json:"source"`
	Samples       []Sample       `json:"samples"`
	SleepSessions []SleepSession `json:"sleep_sessions"`
}

// SleepStages are the stage names accepted on the wire.
var SleepStages = []string{"awake", "light", "deep", "rem"}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Parse decodes and validates a push body. requireUserID selects the webhook
// shape (user_id required) or the bearer shape (user_id forbidden: the token
// decides whose data it is, never the body); notAfter is the latest instant
// a value may lie at (the receiving clock plus the allowed skew; zero: no
// bound). It returns a *domain.MalformedError for bytes that are not the
// expected JSON and a *domain.ValidationError listing every rule broken.
func Parse(body []byte, requireUserID bool, notAfter time.Time) (Batch, error) {
	if !utf8.Valid(body) {
		// encoding/json would turn invalid bytes into U+FFFD silently: the
		// stored text would not be what was signed and sent.
		return Batch{}, &domain.MalformedError{Detail: "the body is not valid UTF-8"}
	}
	var b Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Batch{}, malformed(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Batch{}, &domain.MalformedError{Detail: "unexpected data after the JSON object"}
	}
	// The decoder has judged the syntax and the types; nothing it decoded
	// is used before the body is known to say one thing.
	if err := checkStrict(body); err != nil {
		return Batch{}, err
	}
	return b, b.Validate(requireUserID, notAfter)
}

func malformed(body []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &domain.MalformedError{Detail: fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)}
	case errors.As(err, &typ):
		// typ.Field is a Go-style path without array indices
		// ("samples.value"), so the pointer is recovered from the offset.
		field, _ := pointerAt(body, typ.Offset)
		return &domain.MalformedError{Field: field, Detail: fmt.Sprintf("expected %s, got JSON %s", typ.Type, typ.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/" + name, Detail: "unknown field"}}}
	case errors.Is(err, io.EOF):
		return &domain.MalformedError{Detail: "empty body"}
	default:
		return &domain.MalformedError{Detail: err.Error()}
	}
}

// pointerAt returns the JSON pointer (RFC 6901) of the value in body at which
// encoding/json reports an UnmarshalTypeError: its Offset lies just past a
// scalar, or just past the opening delimiter of an object or array, which is
// also where json.Decoder.InputOffset stands after reading that token. It
// returns "" and false when no value matches (the caller then reports the
// problem without a field rather than a wrong one); the root is "".
func pointerAt(body []byte, offset int64) (string, bool) {
	type frame struct {
		array   bool
		index   int    // array: index of the current element
		key     string // object: key of the current member
		wantKey bool   // object: the next token is a key or '}'
	}
	var stack []frame
	// done moves the parent past a value that just ended.
	done := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	pointer := func() string {
		var sb strings.Builder
		for _, f := range stack {
			sb.WriteByte('/')
			if f.array {
				sb.WriteString(strconv.Itoa(f.index))
			} else {
				sb.WriteString(pointerEscaper.Replace(f.key))
			}
		}
		return sb.String()
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too large for float64 is a token, not an error
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			key, _ := tok.(string)
			stack[n-1].key, stack[n-1].wantKey = key, false
			continue
		}
		// tok begins a value: a scalar, '{' or '['.
		if dec.InputOffset() == offset {
			return pointer(), true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{array: true})
		default:
			done()
		}
	}
}

// pointerEscaper escapes an object key for a JSON pointer: '~' becomes ~0
// and '/' becomes ~1, in one pass so an escape is never escaped again.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// Validate checks every rule and reports all broken ones. notAfter bounds
// how far into the future a value may lie (zero: no bound); the rules that
// do not depend on the clock are the ones Normalize applies again when the
// log is replayed.
func (b Batch) Validate(requireUserID bool, notAfter time.Time) error {
	v := &domain.ValidationError{}
	switch {
	case requireUserID && b.UserID == "":
		v.Add("/user_id", "is required")
	case requireUserID && !uuidPattern.MatchString(b.UserID):
		v.Add("/user_id", "must be a UUID")
	case !requireUserID && b.UserID != "":
		v.Add("/user_id", "must not be sent: the access token names the user")
	}
	if strings.TrimSpace(b.Source.Provider) == "" {
		v.Add("/source/provider", "is required")
	} else if len(b.Source.Provider) > 64 || len(b.Source.Device) > 128 {
		v.Add("/source", "provider is limited to 64 and device to 128 characters")
	}
	if !printable(b.Source.Provider) {
		v.Add("/source/provider", "must not contain control characters")
	}
	if !printable(b.Source.Device) {
		v.Add("/source/device", "must not contain control characters")
	}
	if len(b.Samples)+len(b.SleepSessions) == 0 {
		v.Add("/samples", "a batch needs at least one sample or sleep session")
	}
	if len(b.Samples)+len(b.SleepSessions) > MaxItems {
		v.Add("/samples", "a batch holds at most %d items; split larger uploads", MaxItems)
	}
	for i, s := range b.Samples {
		p := fmt.Sprintf("/samples/%d", i)
		def, ok := metric.Lookup(metric.Type(s.Type))
		if !ok {
			v.Add(p+"/type", "unknown metric type %q", s.Type)
		} else if c, err := def.Convert(s.Value, s.Unit); err != nil {
			v.Add(p+"/unit", "%v", err)
		} else if err := def.CheckRange(c); err != nil {
			v.Add(p+"/value", "%v", err)
		}
		if _, end, ok := checkInterval(v, p, s.Start, s.End); ok {
			checkNotAfter(v, p+"/end", end, notAfter)
		}
	}
	for i, ss := range b.SleepSessions {
		p := fmt.Sprintf("/sleep_sessions/%d", i)
		start, end, ok := checkInterval(v, p, ss.Start, ss.End)
		if ok && end.Sub(start) > 24*time.Hour {
			v.Add(p+"/end", "a sleep session lasts at most 24 hours")
		}
		if ok {
			checkNotAfter(v, p+"/end", end, notAfter)
		}
		var stages []stageSpan
		for j, st := range ss.Stages {
			q := fmt.Sprintf("%s/stages/%d", p, j)
			if !validStage(st.Stage) {
				v.Add(q+"/stage", "must be one of %s", strings.Join(SleepStages, ", "))
			}
			s2, e2, ok2 := checkInterval(v, q, st.Start, st.End)
			if ok && ok2 && (s2.Before(start) || e2.After(end)) {
				v.Add(q, "stage lies outside its session")
			}
			if ok2 {
				stages = append(stages, stageSpan{j, s2, e2})
			}
		}
		checkOverlaps(v, p, stages)
	}
	return v.Err()
}

// printable rejects control characters (NUL cannot even be stored in a
// PostgreSQL text column) and invalid UTF-8.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validStage(s string) bool {
	for _, x := range SleepStages {
		if s == x {
			return true
		}
	}
	return false
}

// stageSpan is one parsed stage of a session and its index on the wire.
type stageSpan struct {
	index      int
	start, end time.Time
}

// checkOverlaps reports stages of one session that overlap an earlier one
// (touching ends are fine): a person is in one stage at a time, and
// overlapping stages would count the same minutes twice.
func checkOverlaps(v *domain.ValidationError, p string, stages []stageSpan) {
	sorted := slices.Clone(stages)
	slices.SortStableFunc(sorted, func(a, b stageSpan) int { return a.start.Compare(b.start) })
	var reach stageSpan // of the stages so far, the one that ends last
	for i, cur := range sorted {
		if i > 0 && cur.start.Before(reach.end) {
			v.Add(fmt.Sprintf("%s/stages/%d", p, cur.index), "overlaps stage %d: stages of a session must not overlap", reach.index)
		}
		if i == 0 || cur.end.After(reach.end) {
			reach = cur
		}
	}
}

// checkNotAfter reports a value that lies beyond notAfter (zero: no bound).
func checkNotAfter(v *domain.ValidationError, field string, t, notAfter time.Time) {
	if !notAfter.IsZero() && t.After(notAfter) {
		v.Add(field, "lies in the future (after %s)", notAfter.UTC().Format(time.RFC3339))
	}
}

func checkInterval(v *domain.ValidationError, p, start, end string) (time.Time, time.Time, bool) {
	s, err1 := ParseTime(start)
	if err1 != nil {
		v.Add(p+"/start", "%v", err1)
	}
	e, err2 := ParseTime(end)
	if err2 != nil {
		v.Add(p+"/end", "%v", err2)
	}
	if err1 != nil || err2 != nil {
		return s, e, false
	}
	if e.Before(s) {
		v.Add(p+"/end", "is before start")
		return s, e, false
	}
	return s, e, true
}

// The instants a value may carry, whatever the clock says: from the Unix
// epoch to the end of 2199 in UTC. The upper bound leaves every derived
// instant (hour and day buckets, local days up to 18 hours ahead, JSON
// encoding, PostgreSQL's timestamptz) far inside what each can represent;
// the edge adds a tighter bound from the receiving clock.
var (
	earliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// maxOffset is the largest UTC offset ISO 8601 and RFC 3339 timestamps may
// carry in practice (±18:00, as java.time and JSON Schema validators allow);
// real zones stay within -12:00..+14:00.
const maxOffset = 18 * 60 * 60

// ParseTime parses an RFC 3339 timestamp and insists on an explicit offset
// ("Z" counts), since a time without one cannot be put on a local day. The
// offset must be within ±18:00 and the instant (in UTC) within 1970..2199,
// so every value accepted can be bucketed, attributed and encoded again.
// These rules do not depend on the clock: Normalize applies them again on
// replay.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("is required (RFC 3339 with offset)")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 timestamp with offset, e.g. 2026-11-20T07:30:00+09:00")
	}
	if _, off := t.Zone(); off > maxOffset || off < -maxOffset {
		return time.Time{}, errors.New("has a UTC offset beyond ±18:00")
	}
	if u := t.UTC(); u.Before(earliest) || !u.Before(latest) {
		return time.Time{}, errors.New("is out of range (1970 to 2199, in UTC)")
	}
	return t, nil
}
