// Package eventexport is the analysts' reader of the event log: it reads the
// topic with filters (users, event types, a time range), decrypts what it
// keeps, and writes one line per event as JSON Lines or CSV, optionally
// pseudonymized, optionally following the log as new events arrive.
//
// # What is read
//
// Every partition is read from its start offset (0, or Kafka's
// offsets-for-times answer for [Filter.From]) up to the high-water mark
// taken when the export starts, so an export is a consistent snapshot and
// ends even while the server keeps writing. [Filter.To] stops a partition at
// its first record whose timestamp is at or after To (the same rule as
// offsets-for-times, so [From, To) is half-open). With [Options.Follow] the
// reader keeps going past the snapshot until the context ends.
//
// User and type filters are applied to the record key / `user-id` header and
// the `event-type` header BEFORE decrypting: another user's data key is
// never loaded, let alone used, by a filtered export.
//
// # Order
//
// The snapshot is a k-way merge of the partitions by (record timestamp,
// partition, offset), where the record timestamp is the event's recorded
// time at millisecond precision. The merge only ever compares the heads of
// the partitions, so each partition's own log order (and therefore every
// user's order) is kept exactly, and the output is the same on every run over
// the same log. When one partition's timestamps are not monotonic (appenders
// with skewed clocks) the output is ordered by time only as far as log order
// allows. In Follow mode, events past the snapshot are written as they
// arrive: per partition in log order, across partitions in arrival order.
//
// # Output
//
// One row per event: event_id, type, schema_version, user_id (or pseudonym),
// occurred_at, recorded_at (RFC 3339, UTC), partition, offset, erased and
// payload. In JSON Lines the payload is embedded as JSON; in CSV it is a
// JSON string column, after a fixed header row. An erased user's events
// (data key destroyed, see eventstore.Stored.Erased) keep their envelope
// and say "erased": true; they have no payload, because there is none left.
//
// # Pseudonymization
//
// With [Options.Pseudonymize] the output carries no user id and no e-mail
// address from known places. Exactly this is changed:
//
//   - the user_id column becomes "pseudonym": the first 32 hex digits of
//     HMAC-SHA256(PseudonymKey, canonical user id). It is stable for one key
//     (exports can be joined) and cannot be reversed or recomputed without it;
//   - in the payload, at any depth (objects inside arrays too), every member
//     named "email" (any letter case) is removed;
//   - in the payload, every member named "user_id" (any letter case) gets the
//     pseudonym of its value (a UUID in any spelling maps to the same
//     pseudonym as the column; null stays null);
//   - in the payload, any other string that is the event's own user id (as
//     a UUID in any spelling) is replaced by its pseudonym.
//
// Nothing else is touched: timezones, device and provider names, delivery
// ids, event ids, timestamps and measurements stay as they are. E-mail
// addresses are removed by field name, not recognized in free text. The
// result is pseudonymous, not anonymous, data.
package eventexport
