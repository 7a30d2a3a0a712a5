// Package catalog names every read model: it maps a projector's name to
// its projector (engine.Catalog) for supervisors, rebuilds, drops and
// as-of builds. It is the only projections package that imports all read
// models; the read models never import each other.
package catalog
