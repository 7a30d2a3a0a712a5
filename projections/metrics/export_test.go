package metrics

// NanoUnits exposes the Go side of the 1e-9 unit conversion.
var NanoUnits = nanoUnits
