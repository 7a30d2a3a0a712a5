// Package settings owns a user's two editable documents, the profile
// settings (display name, timezone, units) and the notification
// preferences, with the rules that make a document valid and the bodies of
// the events that record a change. Each change carries the whole new
// document and its version, so a read model is the last event in log order
// and never a mix of two edits.
package settings
