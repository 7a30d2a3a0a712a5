package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		"a key with a slash, twice": {`{"source":{"provider":"bridge","a/b":1,"a/b":2}}`, "/source/a~1b"},
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
		"null": {`{"source":{"provider":"phone"},"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value": null,"unit":"count"}]}`, "/samples/0/value"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.body), false, time.Time{})
			assert.Contains(t, problemsOf(t, err), c.field)
		})
	}
	_, err := Parse([]byte(`{"source":{"provider":"phone"},"samples":[{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value":0,"unit":"count"}]}`), false, time.Time{})
	assert.NoError(t, err, "an explicit 0 steps is a value")
}

// hasDuplicateKey is the reference: encoding/json's own tokenizer, with the
// keys it decodes, tracked per open object.
func hasDuplicateKey(body []byte) (dup, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type obj struct {
		keys    map[string]bool
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
			if top.keys[k] {
				return true, true
			}
			top.keys[k] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &obj{keys: map[string]bool{}, wantKey: true})
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
