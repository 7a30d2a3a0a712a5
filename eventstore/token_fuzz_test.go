package eventstore

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzConsistencyToken feeds arbitrary client input to ParseToken (it
// arrives in the X-Consistency-Token header of every query). It must never
// panic, must fail only with ErrBadToken, and what it accepts must be in
// normal form (one position per partition, sorted, non-negative) and
// survive String and ParseToken unchanged.
func FuzzConsistencyToken(f *testing.F) {
	for _, s := range []string{
		"", "v1.", "v1.MDo1", Token{{Partition: 0, Offset: 5}, {Partition: 7, Offset: 1 << 40}}.String(),
		"v1.MDo1LDA6Nw", "v1.LTE6NQ", "v2.MDo1", "v1.!!!", "v1.MDo", "v1.OTk5OTk5OTk5OTk6MQ",
		"v1." + "MDo1LA", "v1.MDo1LDE6Mg==", "V1.MDo1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			require.ErrorIs(t, err, ErrBadToken, "error %v does not wrap ErrBadToken", err)
			return
		}
		if s == "" {
			require.Len(t, tok, 0, "empty input gave %v", tok)
			return
		}
		for i, p := range tok {
			require.GreaterOrEqual(t, p.Partition, int32(0), "negative position %v", p)
			require.GreaterOrEqual(t, p.Offset, int64(0), "negative position %v", p)
			if i > 0 {
				require.Less(t, tok[i-1].Partition, p.Partition, "not normalized (partitions strictly ascending): %v", tok)
			}
		}
		again, err := ParseToken(tok.String())
		require.NoError(t, err, "round trip %q -> %v -> %q -> %v (%v)", s, tok, tok.String(), again, err)
		require.True(t, slices.Equal(again, tok), "round trip %q -> %v -> %q -> %v (%v)", s, tok, tok.String(), again, err)
	})
}
