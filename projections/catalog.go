package projections

import (
	"fmt"

	"github.com/biosync/biosync/domain"
)

// Names lists BioSync's projectors, in the order they are started.
var Names = []string{NameUsers, NameMetrics, NameSettings}

// New returns the projector called name at generation gen. cache may be nil
// (no dashboard refresh).
func New(name string, gen int, cache *DashboardCache) (Projector, error) {
	switch name {
	case NameUsers:
		return Users{Gen: gen}, nil
	case NameMetrics:
		return &Metrics{Gen: gen, Cache: cache}, nil
	case NameSettings:
		return Settings{Gen: gen}, nil
	}
	return nil, fmt.Errorf("unknown projector %q (known: %v): %w", name, Names, domain.ErrNotFound)
}
