package eventexport

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/eventstore"
)

// Columns is the CSV header row (and the JSON Lines member order). With
// pseudonymization the user_id column is named "pseudonym" instead, so a
// pseudonymized file can never be mistaken for one with real ids.
var Columns = []string{"event_id", "type", "schema_version", "user_id", "occurred_at", "recorded_at", "partition", "offset", "erased", "payload"}

// PseudonymColumn replaces "user_id" in pseudonymized output.
const PseudonymColumn = "pseudonym"

// Pseudonym is the stable keyed pseudonym of a user id: the first 32 hex
// digits of HMAC-SHA256(key, canonical lower-case user id). Exported so a
// holder of the key can find one user's rows in a pseudonymized export
// (e.g. to honour an access request) without re-exporting.
func Pseudonym(key []byte, userID uuid.UUID) string {
	return pseudonymOf(key, userID.String())
}

func pseudonymOf(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// row is one output line. Member order is the Columns order.
type row struct {
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	UserID        string          `json:"user_id,omitempty"`
	Pseudonym     string          `json:"pseudonym,omitempty"`
	OccurredAt    string          `json:"occurred_at"`
	RecordedAt    string          `json:"recorded_at"`
	Partition     int32           `json:"partition"`
	Offset        int64           `json:"offset"`
	Erased        bool            `json:"erased"`
	Payload       json.RawMessage `json:"payload,omitempty"`
}

// sink writes rows in one format to a buffered writer.
type sink struct {
	format string
	key    []byte // pseudonym key; nil = no pseudonymization
	bw     *bufio.Writer
	csv    *csv.Writer
}

func newSink(w io.Writer, o Options) (*sink, error) {
	s := &sink{format: o.Format, bw: bufio.NewWriterSize(w, 64<<10)}
	switch s.format {
	case "":
		s.format = FormatJSONL
	case FormatJSONL:
	case FormatCSV:
		s.csv = csv.NewWriter(s.bw)
	default:
		return nil, fmt.Errorf("eventexport: unknown format %q (want %s or %s)", o.Format, FormatJSONL, FormatCSV)
	}
	if o.Pseudonymize {
		if len(o.PseudonymKey) < MinPseudonymKeyLen {
			return nil, fmt.Errorf("eventexport: pseudonymization needs a key of at least %d bytes, got %d", MinPseudonymKeyLen, len(o.PseudonymKey))
		}
		s.key = o.PseudonymKey
	}
	return s, nil
}

// header writes the CSV header row (JSON Lines has none).
func (s *sink) header() error {
	if s.csv == nil {
		return nil
	}
	cols := append([]string(nil), Columns...)
	if s.key != nil {
		cols[3] = PseudonymColumn
	}
	return s.csv.Write(cols)
}

// write writes one event.
func (s *sink) write(e eventstore.Stored) error {
	r := row{
		EventID: e.ID.String(), Type: e.Type, SchemaVersion: e.SchemaVersion,
		OccurredAt: e.OccurredAt.UTC().Format(time.RFC3339Nano), RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano),
		Partition: e.Partition, Offset: e.Offset, Erased: e.Erased,
	}
	if s.key != nil {
		r.Pseudonym = Pseudonym(s.key, e.UserID)
	} else {
		r.UserID = e.UserID.String()
	}
	if !e.Erased {
		payload, err := s.payload(e)
		if err != nil {
			return fmt.Errorf("eventexport: event %s at %d/%d: %w", e.ID, e.Partition, e.Offset, err)
		}
		r.Payload = payload
	}
	if s.csv != nil {
		user := r.UserID
		if s.key != nil {
			user = r.Pseudonym
		}
		return s.csv.Write([]string{r.EventID, r.Type, strconv.Itoa(r.SchemaVersion), user, r.OccurredAt, r.RecordedAt,
			strconv.FormatInt(int64(r.Partition), 10), strconv.FormatInt(r.Offset, 10), strconv.FormatBool(r.Erased), string(r.Payload)})
	}
	enc := json.NewEncoder(s.bw)
	enc.SetEscapeHTML(false)
	return enc.Encode(r) // one line: the payload is compact
}

// payload returns the event's payload as compact JSON, scrubbed when
// pseudonymizing.
func (s *sink) payload(e eventstore.Stored) (json.RawMessage, error) {
	if len(bytes.TrimSpace(e.Payload)) == 0 {
		return json.RawMessage("null"), nil
	}
	if s.key == nil {
		var b bytes.Buffer
		if err := json.Compact(&b, e.Payload); err != nil {
			return nil, fmt.Errorf("payload is not JSON: %w", err)
		}
		return b.Bytes(), nil
	}
	dec := json.NewDecoder(bytes.NewReader(e.Payload))
	dec.UseNumber() // numbers keep their exact digits
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	v = scrub(v, s.key, e.UserID.String())
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

// scrub applies the pseudonymization rules of the package documentation to
// a decoded payload: "email" members dropped, "user_id" members and strings
// equal to the owner's id replaced by pseudonyms, at any depth.
func scrub(v any, key []byte, owner string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			switch {
			case strings.EqualFold(k, "email"):
				delete(t, k)
			case strings.EqualFold(k, "user_id"):
				t[k] = pseudonymValue(val, key)
			default:
				t[k] = scrub(val, key, owner)
			}
		}
	case []any:
		for i := range t {
			t[i] = scrub(t[i], key, owner)
		}
	case string:
		if u, err := uuid.Parse(strings.TrimSpace(t)); err == nil && u.String() == owner {
			return pseudonymOf(key, owner)
		}
	}
	return v
}

// pseudonymValue maps a payload user_id value to its pseudonym: a UUID in
// any spelling to the same pseudonym as the user column, any other value to
// the pseudonym of its text.
func pseudonymValue(v any, key []byte) any {
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		if u, err := uuid.Parse(strings.TrimSpace(t)); err == nil {
			return pseudonymOf(key, u.String())
		}
		return pseudonymOf(key, t)
	default:
		b, _ := json.Marshal(t)
		return pseudonymOf(key, string(b))
	}
}

// flush writes everything buffered to the underlying writer.
func (s *sink) flush() error {
	if s.csv != nil {
		s.csv.Flush()
		if err := s.csv.Error(); err != nil {
			return err
		}
	}
	return s.bw.Flush()
}
