package eventstore

import (
	"errors"
	"slices"
	"testing"
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
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v does not wrap ErrBadToken", err)
			}
			return
		}
		if s == "" {
			if len(tok) != 0 {
				t.Fatalf("empty input gave %v", tok)
			}
			return
		}
		for i, p := range tok {
			if p.Partition < 0 || p.Offset < 0 {
				t.Fatalf("negative position %v", p)
			}
			if i > 0 && tok[i-1].Partition >= p.Partition {
				t.Fatalf("not normalized: %v", tok)
			}
		}
		again, err := ParseToken(tok.String())
		if err != nil || !slices.Equal(again, tok) {
			t.Fatalf("round trip %q -> %v -> %q -> %v (%v)", s, tok, tok.String(), again, err)
		}
	})
}
