package catalog_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/catalog"
)

// migrationTables returns the base names of the generation tables the
// migrations create ("samples" for CREATE TABLE samples_g1; 00006 creates
// daily_source_rollups for every generation with format()).
func migrationTables(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../../adapters/postgres/migrations/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	create := regexp.MustCompile(`CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)_g(?:1|%1\$s) `)
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range create.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	return out
}

// Each read model's doc names its tables and the migrations that define
// them; this keeps Tables() and those migrations in step: every table a
// projector owns is created by a migration, and every generation table a
// migration creates belongs to exactly one read model.
func TestTablesAreTheOnesTheMigrationsCreate(t *testing.T) {
	created := migrationTables(t)
	owner := map[string]string{}
	for _, name := range catalog.Names {
		p, err := catalog.Catalog{}.New(name, 1)
		require.NoError(t, err)
		for _, table := range p.Tables() {
			assert.Truef(t, created[table], "%s's table %s_g1 is created by no migration", name, table)
			assert.Emptyf(t, owner[table], "%s is owned by both %s and %s", table, owner[table], name)
			owner[table] = name
		}
	}
	for table := range created {
		assert.NotEmptyf(t, owner[table], "the migrations create %s_g1, which no read model owns", table)
	}
}

func TestTheCatalogKnowsEveryProjectorByItsName(t *testing.T) {
	for _, name := range (catalog.Catalog{}).Names() {
		p, err := catalog.Catalog{}.New(name, 3)
		require.NoError(t, err)
		assert.Equal(t, name, p.Name())
		assert.Equal(t, 3, p.Generation())
	}
	_, err := catalog.Catalog{}.New("nope", 1)
	assert.ErrorIs(t, err, domain.ErrNotFound)
}
