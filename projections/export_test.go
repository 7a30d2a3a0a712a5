package projections

// TraceLinks exposes links to the external test package.
var TraceLinks = links

// NanoUnits exposes the Go side of the 1e-9 unit conversion.
var NanoUnits = nanoUnits
