package webhooks_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
)

// A sender signs the raw body; the receiver verifies the same raw bytes.
func ExampleVerifier_Verify() {
	key, err := webhooks.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	sentAt := time.Unix(1614265330, 0)

	h := http.Header{}
	webhooks.SetHeaders(h, key, "msg_p5jXN8AQM9LWM0D4loKWxJek", sentAt, body)
	fmt.Println(h.Get(webhooks.HeaderSignature))

	v := webhooks.Verifier{
		Keys: [][]byte{key},
		Now:  func() time.Time { return sentAt.Add(time.Minute) },
	}
	d, err := v.Verify(h, body)
	fmt.Println(d.ID, err)
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// msg_p5jXN8AQM9LWM0D4loKWxJek <nil>
}
