package engine

import "fmt"

// Catalog makes projectors by name. It is how the engine (supervisors,
// rebuilds, drops, as-of builds) runs read models it does not know: the
// wiring passes one (projections/catalog).
type Catalog interface {
	// Names lists the projectors, in the order they are started.
	Names() []string
	// New returns the projector called name at generation gen, or an error
	// wrapping domain.ErrNotFound for an unknown name.
	New(name string, gen int) (Projector, error)
}

// Table is the name of generation gen's copy of a read model table
// ("samples" at 2 is "samples_g2"): every generation has its own tables,
// so a rebuild never touches what readers see.
func Table(base string, gen int) string { return fmt.Sprintf("%s_g%d", base, gen) }
