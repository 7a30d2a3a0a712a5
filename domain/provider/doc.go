// Package provider holds what BioSync knows about wearable providers
// independently of any one of them: their names, the states a connection
// goes through, and the bodies of the connection and provider events
// (connection.established, connection.revoked, provider.notified,
// provider.record_fetched). Each provider's pure normalization lives in a
// subpackage (oura), so a provider's record becomes canonical samples
// without any I/O and a mapping fix is deployed by rebuilding.
package provider
