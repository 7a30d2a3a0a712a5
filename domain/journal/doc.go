// Package journal owns what a user writes about a day: one entry per user
// and local day with tags (lower_snake_case names, each with an amount),
// optional mood, energy and stress ratings and a free-text note, the rules
// that make an entry valid, the suggested tag catalog a frontend offers,
// and the bodies of the events that record a change. Entries are attributed
// to the local day the user names, so a later timezone change never moves
// them; insights (a later issue) correlate their tags with the following
// night.
package journal
