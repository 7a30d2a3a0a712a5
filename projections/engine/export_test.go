package engine

// TraceLinks exposes links to the external test package.
var TraceLinks = links
