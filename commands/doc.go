// Package commands holds BioSync's command handlers: each validates its
// input with domain rules, decides, and appends exactly one event to the log
// (one command, one record, so nothing is ever half-written). A handler
// answers only after the log acknowledged the append and returns the
// consistency token of what it wrote.
package commands
