package eventstore

import "time"

// SetClock lets tests move a key ring's clock (key cache expiry).
func SetClock(k *Keyring, now func() time.Time) { k.now = now }
