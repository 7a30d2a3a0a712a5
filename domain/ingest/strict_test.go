package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
)

const strictBody = `{"user_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","source":{"provider":"bridge"},` +
	`"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value":10,"unit":"count"}]}`

// A signed body says one thing: a member sent twice (however its name is
// spelled) is refused before anything reads the body, never settled by
// keeping the last.
func TestAMemberSentTwiceIsRefused(t *testing.T) {
	cases := map[string]struct{ body, field string }{
		"user_id twice":               {`{"user_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","user_id":"00000000-0000-4000-8000-000000000000",` + strictBody[len(`{"user_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d",`):], "/user_id"},
		"user_id twice, once escaped": {`{"\u0075ser_id":"00000000-0000-4000-8000-000000000000",` + strictBody[1:], "/user_id"},
		"a sample's value twice": {`{"user_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","source":{"provider":"bridge"},"samples":[` +
			`{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value":10,"value":99999,"unit":"count"}]}`, "/samples/0/value"},
		"user_id twice, once in capitals (the decoder matches names without case)": {`{"USER_ID":"00000000-0000-4000-8000-000000000000",` + strictBody[1:], "/user_id"},
		"user_id twice, once with a long s":                                        {`{"uſer_id":"00000000-0000-4000-8000-000000000000",` + strictBody[1:], "/user_id"},
		"a sample's value twice, once as Value": {`{"user_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","source":{"provider":"bridge"},"samples":[` +
			`{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value":10,"Value":99999,"unit":"count"}]}`, "/samples/0/Value"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.body), true, time.Time{})
			problems := problemsOf(t, err)
			assert.Contains(t, problems, c.field)
			assert.Len(t, problems, 1, "nothing else is read from an ambiguous body")
		})
	}
}

// A sample without a value (or with null) is not a value of 0.
func TestASampleWithoutAValueIsRefused(t *testing.T) {
	for name, c := range map[string]struct{ body, field string }{
		"missing": {`{"source":{"provider":"phone"},"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value":1,"unit":"count"},` +
			`{"type":"heart_rate","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:00:00Z","unit":"bpm"}]}`, "/samples/1/value"},
		"null":                   {`{"source":{"provider":"phone"},"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value": null,"unit":"count"}]}`, "/samples/0/value"},
		"missing, under Samples": {`{"source":{"provider":"phone"},"Samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","unit":"count"}]}`, "/Samples/0/value"},
		"null, as VALUE":         {`{"source":{"provider":"phone"},"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","VALUE":null,"unit":"count"}]}`, "/samples/0/value"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.body), false, time.Time{})
			assert.Contains(t, problemsOf(t, err), c.field)
		})
	}
	_, err := Parse([]byte(`{"source":{"provider":"phone"},"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value":0,"unit":"count"}]}`), false, time.Time{})
	assert.NoError(t, err, "an explicit 0 steps is a value")
	_, err = Parse([]byte(`{"source":{"provider":"phone"},"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","VALUE":7,"unit":"count"}]}`), false, time.Time{})
	assert.NoError(t, err, "the decoder reads VALUE as value, and so does the check")
}

// The check's cost stays linear whatever a body holds: an object with more
// members than any push object has is already invalid, and the check stops
// comparing there (a body of 100,000 keys in one object took 46 s when every
// key was compared with every other).
func TestTheCheckStaysCheapOnAnObjectOfManyKeys(t *testing.T) {
	var sb bytes.Buffer
	sb.WriteString(`{"source":{"provider":"phone"},"samples":[{`)
	for i := range 100_000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"k%d":1`, i)
	}
	sb.WriteString(`}]}`)
	start := time.Now()
	assert.NoError(t, checkStrict(sb.Bytes()), "a body it stops following is left to the decoder")
	assert.Less(t, time.Since(start), time.Second)
}

// Syntax is the decoder's to judge: a body that is not JSON is a 400 from
// the decoder, never a 422 from this check, whatever it holds.
func TestABrokenBodyIsTheDecodersToReport(t *testing.T) {
	for _, body := range []string{`{"a":1,"a":2`, `{"a":tru,"a":1}`, `{"samples":[{"type":"x"}]} garbage`, `{"samples":[{"type":"x","value":nullx}]}`} {
		_, err := Parse([]byte(body), false, time.Time{})
		var m *domain.MalformedError
		assert.True(t, errors.As(err, &m), "%s: want a malformed-body error, got %v", body, err)
	}
}

// hasDuplicateKey is the reference: encoding/json's own tokenizer, with the
// keys it decodes compared as its decoder matches field names (without
// regard to case), tracked per open object. ok is false for what the check
// does not follow: bodies that are not JSON, objects of too many members.
func hasDuplicateKey(body []byte) (dup, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type obj struct {
		keys    []string
		wantKey bool
	}
	var stack []*obj
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return false, true
		}
		if err != nil {
			return false, false
		}
		var top *obj
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.wantKey {
			if d, isDelim := tok.(json.Delim); isDelim && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1] != nil {
					stack[len(stack)-1].wantKey = true
				}
				continue
			}
			k := tok.(string)
			if len(top.keys) == maxStrictMembers {
				return false, false // beyond what the check follows
			}
			for _, seen := range top.keys {
				if strings.EqualFold(seen, k) {
					return true, true
				}
			}
			top.keys = append(top.keys, k)
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &obj{wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1] != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// FuzzStrictFindsExactlyTheDuplicateKeysTheDecoderWouldSettle: on every
// well-formed body (to the depth it follows), checkStrict reports a
// duplicate key exactly when encoding/json's tokenizer sees one.
func FuzzStrictFindsExactlyTheDuplicateKeysTheDecoderWouldSettle(f *testing.F) {
	f.Add([]byte(strictBody))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`{"a":{"b":1},"c":[{"b":1,"b":2}]}`))
	f.Add([]byte(`{"\u0061":1,"a":2}`))
	f.Add([]byte(`{"a\"b":1,"a\\"b":2}`))
	f.Add([]byte(`[{"a":1},{"a":1}]`))
	f.Add([]byte(`{"a":1,"A":2}`))
	f.Add([]byte(`{"s":1,"\u017f":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		want, ok := hasDuplicateKey(body)
		if !ok || !json.Valid(body) {
			return // not JSON: the decoder reports it, checkStrict must only not panic
		}
		s := strictScanner{b: body}
		s.value()
		if s.broken && s.dup == "" {
			require.LessOrEqual(t, maxStrictDepth, bytes.Count(body, []byte("["))+bytes.Count(body, []byte("{")), "gave up on a shallow, valid body: %q", body)
			return
		}
		require.Equal(t, want, s.dup != "", "duplicate key in %q", body)
	})
}
