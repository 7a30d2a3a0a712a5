package ingest

import (
	"crypto/sha256"
	"encoding/json"
)

// Digest identifies what a batch says, so a second delivery under one
// delivery id can be told apart from a redelivery: the command side keeps
// it with the delivery's durable record, and the metrics projector keeps it
// beside the event ids it applied. It is SHA-256 over the batch's canonical
// JSON (the struct's own encoding: fields in declaration order, times and
// numbers as the decoder produced them), so two bodies that differ only in
// whitespace or member order have one digest, and any difference in what
// is stored has another. UserID must be set as it will be stored.
func (b Batch) Digest() [32]byte {
	raw, err := json.Marshal(b)
	if err != nil {
		// A Batch holds strings, numbers and times that came out of the
		// decoder; encoding cannot fail. Should it, a digest of nothing
		// would collide, so fail loudly.
		panic("ingest: batch does not encode: " + err.Error())
	}
	return sha256.Sum256(raw)
}
