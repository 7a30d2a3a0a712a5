// Package webhooks signs and verifies HTTP deliveries according to the
// Standard Webhooks specification (https://www.standardwebhooks.com).
//
// BioSync accepts health data pushed by devices, vendor bridges and the
// built-in simulator through a single webhook endpoint. Anyone who can reach
// that endpoint could otherwise write data into any user's event stream, so
// every delivery must carry an HMAC-SHA256 signature over its id, its
// timestamp and its raw body, made with a shared secret. This package is the
// one place that knows the wire format:
//
//   - secrets are serialised as "whsec_" followed by the base64 key
//     ([ParseSecret], [NewSecret]);
//   - signatures are "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>"
//     ([Sign], [SetHeaders]);
//   - receivers check the webhook-id, webhook-timestamp and webhook-signature
//     headers with a [Verifier], which accepts any of several live keys so a
//     secret can be rotated without downtime, and rejects deliveries whose
//     timestamp is too far from the receiver's clock to stop replays.
//
// The package works on raw bytes only and never parses the body: signatures
// are over the exact bytes on the wire, and re-serialised JSON does not
// verify. It depends on the standard library only.
package webhooks
