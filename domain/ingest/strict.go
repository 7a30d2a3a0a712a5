package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/biosync/biosync/domain"
)

// maxStrictDepth is how deep checkStrict follows nesting. A push body is
// five levels deep at most; anything deeper is left to the decoder, which
// refuses it as the wrong shape.
const maxStrictDepth = 32

// maxStrictMembers is the most members checkStrict compares in one object.
// No object of a push body has more than five fields and unknown fields are
// refused, so a longer object is already invalid: stopping there keeps the
// pairwise comparison cheap on any body (a body of many keys in one object
// would otherwise cost time quadratic in their number).
const maxStrictMembers = 16

// strictFrame is one open object or array while checkStrict walks a body.
type strictFrame struct {
	object bool
	keys   [][]byte // object: the decoded keys seen so far
	key    []byte   // object: the key whose value is being read
	index  int      // array: the index of the element being read
	// sample marks an element of the top-level samples array; hasValue
	// and nullValue record what its value member was.
	sample, hasValue, nullValue bool
}

// checkStrict walks a body the decoder accepted and refuses what
// encoding/json settled silently:
//
//   - an object with the same member twice, compared the way the decoder
//     matches field names: decoded ("\u0075ser_id") and without regard to
//     case ("USER_ID", "uſer_id"); the decoder kept the last one, so a
//     signed body could say two things and mean the second;
//   - a sample whose value is missing or null: the decoder kept 0, and a
//     missing heart rate is not a heart rate of 0.
//
// It reports these as a *domain.ValidationError naming the field, and
// nothing for a body it cannot follow to its end (the decoder has judged
// the syntax already: Parse calls this only after a clean decode).
func checkStrict(body []byte) error {
	s := strictScanner{b: body}
	s.value()
	s.ws()
	if s.dup == "" && (s.broken || s.i != len(s.b)) {
		return nil
	}
	if s.dup != "" {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: s.dup, Detail: "appears twice in its object: send each member once"}}}
	}
	if len(s.problems) > 0 {
		return &domain.ValidationError{Problems: s.problems}
	}
	return nil
}

// strictScanner is checkStrict's cursor over the body.
type strictScanner struct {
	b     []byte
	i     int
	stack []strictFrame
	// keyBufs keeps each depth's key list between objects, so a body of
	// many small objects costs no allocation per object.
	keyBufs  [maxStrictDepth][][]byte
	dup      string // pointer of the first duplicate key
	problems []domain.FieldProblem
	broken   bool // the bytes are not JSON the scanner can follow
}

func (s *strictScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value reads one JSON value at the cursor.
func (s *strictScanner) value() {
	s.ws()
	if s.broken || s.dup != "" || s.i >= len(s.b) {
		s.broken = true
		return
	}
	switch s.b[s.i] {
	case '{':
		s.object()
	case '[':
		s.array()
	case '"':
		if _, ok := s.str(); !ok {
			s.broken = true
		}
	default:
		start := s.i
	literal:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				break literal
			}
			s.i++
		}
		if s.i == start {
			s.broken = true
		}
	}
}

func (s *strictScanner) object() {
	if len(s.stack) >= maxStrictDepth {
		s.broken = true
		return
	}
	s.i++ // '{'
	depth := len(s.stack)
	s.stack = append(s.stack, strictFrame{object: true, sample: s.atSampleElement(), keys: s.keyBufs[depth][:0]})
	defer s.closeFrame()
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return
	}
	for !s.broken && s.dup == "" {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			s.broken = true
			return
		}
		key, ok := s.str()
		if !ok {
			s.broken = true
			return
		}
		f := &s.stack[len(s.stack)-1]
		f.key = key
		if len(f.keys) == maxStrictMembers {
			s.broken = true
			return
		}
		for _, k := range f.keys {
			if bytes.EqualFold(k, key) {
				s.dup = s.pointer()
				return
			}
		}
		f.keys = append(f.keys, key)
		s.keyBufs[depth] = f.keys
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			s.broken = true
			return
		}
		s.i++
		s.ws()
		if f.sample && bytes.EqualFold(key, []byte("value")) {
			f.hasValue = true
			f.nullValue = bytes.HasPrefix(s.b[s.i:], []byte("null"))
		}
		s.value()
		if !s.more('}') {
			return
		}
	}
}

func (s *strictScanner) array() {
	if len(s.stack) >= maxStrictDepth {
		s.broken = true
		return
	}
	s.i++ // '['
	s.stack = append(s.stack, strictFrame{})
	defer func() { s.stack = s.stack[:len(s.stack)-1] }()
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return
	}
	for !s.broken && s.dup == "" {
		s.value()
		if !s.more(']') {
			return
		}
		s.stack[len(s.stack)-1].index++
	}
}

// more reads what follows a member or an element: a comma (true: another
// follows) or the closing delimiter (false); anything else ends the scan
// as broken.
func (s *strictScanner) more(closing byte) bool {
	s.ws()
	switch {
	case s.i < len(s.b) && s.b[s.i] == ',':
		s.i++
		return true
	case s.i < len(s.b) && s.b[s.i] == closing:
		s.i++
	default:
		s.broken = true
	}
	return false
}

// closeFrame pops an object and, for a sample, reports a missing or null
// value.
func (s *strictScanner) closeFrame() {
	f := s.stack[len(s.stack)-1]
	if f.sample && !s.broken && s.dup == "" && (!f.hasValue || f.nullValue) {
		field := s.pointerTo(len(s.stack)-1) + "/value"
		detail := "must be a number, not null"
		if !f.hasValue {
			detail = "is required: a sample without a value is not a value of 0"
		}
		s.problems = append(s.problems, domain.FieldProblem{Field: field, Detail: detail})
	}
	s.stack = s.stack[:len(s.stack)-1]
}

// atSampleElement reports whether an object opening now is an element of
// the top-level samples array.
func (s *strictScanner) atSampleElement() bool {
	n := len(s.stack)
	return n == 2 && s.stack[0].object && bytes.EqualFold(s.stack[0].key, []byte("samples")) && !s.stack[1].object
}

// str reads a JSON string at the cursor and returns it decoded (a slice of
// the body when it holds no escape).
func (s *strictScanner) str() ([]byte, bool) {
	start := s.i
	s.i++ // opening quote
	escaped := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			raw := s.b[start:s.i]
			if !escaped {
				return raw[1 : len(raw)-1], true
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return nil, false
			}
			return []byte(out), true
		}
		s.i++
	}
	return nil, false
}

// pointer is the JSON pointer of the member being read.
func (s *strictScanner) pointer() string { return s.pointerTo(len(s.stack)) }

// pointerTo is the JSON pointer of the value the first n frames lead to.
func (s *strictScanner) pointerTo(n int) string {
	var sb strings.Builder
	for _, f := range s.stack[:n] {
		sb.WriteByte('/')
		if f.object {
			sb.WriteString(pointerEscaper.Replace(string(f.key)))
		} else {
			sb.WriteString(strconv.Itoa(f.index))
		}
	}
	return sb.String()
}
