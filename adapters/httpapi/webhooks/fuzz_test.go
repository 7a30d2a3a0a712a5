package webhooks

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzVerify feeds arbitrary header values and bodies to Verify. Verify must
// never panic, must only succeed for the exact id it was given, must report
// failures through the documented sentinels, and must accept a delivery that
// was correctly signed for the fuzzed id and body.
func FuzzVerify(f *testing.F) {
	ts := strconv.Itoa(refTimestamp)
	f.Add(refMsgID, ts, refSignature, []byte(refPayload))
	f.Add(refMsgID, ts, refBadSignature, []byte(refPayload))
	f.Add(refMsgID, ts, "v1,"+refOtherSignature+" v2,"+refOtherSignature+" "+refSignature, []byte(refPayload))
	f.Add(refMsgID, "hello", refSignature, []byte(refPayload))
	f.Add(refMsgID, ts, "v1,", []byte(refPayload))
	f.Add(refMsgID, ts, ",,, v1 v1,, ,v1", []byte{})
	f.Add("", "", "", []byte(nil))
	f.Add("msg.1", ts, refSignature, []byte(refPayload))
	f.Add(refMsgID, "-1", refSignature, []byte("\x00\xff"))
	f.Add(refMsgID, "99999999999999999999", "v1a,"+refOtherSignature, []byte("{}"))
	f.Add("msg_\u00e9\u2028", ts, "v1,====", []byte(`{"test": 2432232314} `))

	key := mustKey(f, refSecret)
	now := time.Unix(refTimestamp, 0)
	v := Verifier{Keys: [][]byte{key, []byte("second-live-key-0123456789")}, Now: fixedNow(now)}
	sentinels := []error{ErrMissingHeader, ErrInvalidID, ErrInvalidTimestamp, ErrTimestampOutOfTolerance, ErrNoMatchingSignature}

	f.Fuzz(func(t *testing.T, id, tsHeader, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, tsHeader)
		h.Set(HeaderSignature, sig)

		d, err := v.Verify(h, body)
		if err == nil {
			require.Equal(t, id, d.ID, "Delivery.ID = %q, want %q", d.ID, id)
			require.LessOrEqual(t, d.Timestamp.Unix(), now.Add(DefaultTolerance).Unix(), "accepted timestamp %v outside tolerance", d.Timestamp)
			require.False(t, d.Timestamp.Before(now.Add(-DefaultTolerance)), "accepted timestamp %v outside tolerance", d.Timestamp)
		} else {
			known := false
			for _, s := range sentinels {
				known = known || errors.Is(err, s)
			}
			require.True(t, known, "error %v wraps no sentinel", err)
		}

		// A correct signature for this id and body must always verify,
		// whatever junk surrounds it in the header.
		if id == "" || strings.Contains(id, ".") {
			return
		}
		h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		h.Set(HeaderSignature, sig+" "+Sign(key, id, now, body))
		_, err = v.Verify(h, body)
		require.NoError(t, err, "correctly signed delivery rejected")
	})
}
