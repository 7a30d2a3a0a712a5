package catalog

import (
	"fmt"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/connections"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/journal"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/settings"
	"github.com/biosync/biosync/projections/users"
)

// Names lists BioSync's projectors, in the order they are started.
var Names = []string{users.Name, metrics.Name, settings.Name, journal.Name, connections.Name}

// Catalog makes BioSync's projectors by name (engine.Catalog). The zero
// value makes them without side effects: what rebuild templates, drops and
// as-of builds need.
type Catalog struct {
	// Dashboards, when set, is refreshed by the metrics projector after
	// each commit of the live generation.
	Dashboards *metrics.DashboardCache
}

// Names implements engine.Catalog.
func (c Catalog) Names() []string { return Names }

// New implements engine.Catalog.
func (c Catalog) New(name string, gen int) (engine.Projector, error) {
	switch name {
	case users.Name:
		return users.Projector{Gen: gen}, nil
	case metrics.Name:
		return &metrics.Projector{Gen: gen, Cache: c.Dashboards}, nil
	case settings.Name:
		return settings.Projector{Gen: gen}, nil
	case journal.Name:
		return journal.Projector{Gen: gen}, nil
	case connections.Name:
		return connections.Projector{Gen: gen}, nil
	}
	return nil, fmt.Errorf("unknown projector %q (known: %v): %w", name, Names, domain.ErrNotFound)
}
