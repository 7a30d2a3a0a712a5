package biosync_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/biosync/biosync"

// listed is the part of `go list -json` output these tests read.
type listed struct {
	ImportPath string
	Dir        string
	Name       string
	Standard   bool
	DepOnly    bool
	GoFiles    []string
	Deps       []string
}

// rel is the package path inside the module ("domain/metric"), or "" for a
// package outside it.
func (p listed) rel() string {
	if p.ImportPath == module {
		return "."
	}
	if r, ok := strings.CutPrefix(p.ImportPath, module+"/"); ok {
		return r
	}
	return ""
}

// within reports whether the module-relative path rel is dir or below it.
func within(rel string, dirs ...string) bool {
	for _, d := range dirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// goList returns every package of the module and, by import path, every
// package they depend on (non-test builds).
func goList(t *testing.T) (ours []listed, all map[string]listed) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	all = map[string]listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "go list output")
		all[p.ImportPath] = p
		if !p.DepOnly && p.rel() != "" {
			ours = append(ours, p)
		}
	}
	require.NotEmpty(t, ours, "go list found no packages of the module")
	return ours, all
}

// pgerr is the one adapter package the inner layers may use: a leaf that
// only classifies pgx errors (transient, permanent, unavailable), imported
// like pgx itself by the projection packages, which speak SQL by design.
const pgerr = "adapters/postgres/pgerr"

// room is the first path element below root ("commands/ingest/x" under
// "commands" is "ingest"); "" for root itself or a path outside it.
func room(rel, root string) string {
	rest, ok := strings.CutPrefix(rel, root+"/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	return first
}

// rule is one dependency rule: for every package it applies to, every
// package it depends on (directly or not, non-test builds) must be allowed.
type rule struct {
	name    string
	applies func(rel string) bool
	allowed func(p, dep listed) bool
}

// checkRules runs each rule as a subtest; a rule that applies to no package
// fails, so a renamed layer cannot silently switch a rule off.
func checkRules(t *testing.T, rules []rule) {
	t.Helper()
	ours, all := goList(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			checked := 0
			for _, p := range ours {
				if !r.applies(p.rel()) {
					continue
				}
				checked++
				for _, path := range p.Deps {
					dep, ok := all[path]
					if !ok {
						assert.Failf(t, "unknown dependency", "%s depends on %s, which go list did not describe", p.ImportPath, path)
						continue
					}
					assert.True(t, r.allowed(p, dep), "%s depends on %s", p.ImportPath, path)
				}
			}
			assert.NotZero(t, checked, "the rule applies to no package: a layer was renamed or moved")
		})
	}
}

// Dependencies point inward: the domain knows nothing but itself and the
// standard library, the application layers know no technology, and only
// cmd wires adapters together.
func TestDependenciesPointInward(t *testing.T) {
	checkRules(t, []rule{
		{
			name:    "domain imports only the standard library and domain",
			applies: func(rel string) bool { return within(rel, "domain") },
			allowed: func(_, dep listed) bool { return dep.Standard || within(dep.rel(), "domain") },
		},
		{
			name:    "commands import no adapters and no cmd",
			applies: func(rel string) bool { return within(rel, "commands") },
			allowed: func(_, dep listed) bool { return !within(dep.rel(), "adapters", "cmd") },
		},
		{
			name:    "projections import no adapters (but the pgerr leaf) and no cmd",
			applies: func(rel string) bool { return within(rel, "projections") },
			allowed: func(_, dep listed) bool {
				return !within(dep.rel(), "adapters", "cmd") || dep.rel() == pgerr
			},
		},
		{
			name:    "eventstore imports no adapters, commands or projections",
			applies: func(rel string) bool { return within(rel, "eventstore") },
			allowed: func(_, dep listed) bool { return !within(dep.rel(), "adapters", "commands", "projections", "cmd") },
		},
		{
			name:    "only cmd imports cmd",
			applies: func(rel string) bool { return !within(rel, "cmd") },
			allowed: func(_, dep listed) bool { return !within(dep.rel(), "cmd") },
		},
	})
}

// One room per concept: each concept's package may use the shared kernel of
// its layer, never a sibling concept, so a new concept (journal, scores,
// connections) lands in a room of its own and rooms stay small.
func TestRoomsKeepToThemselves(t *testing.T) {
	checkRules(t, []rule{
		{
			name:    "command packages do not import each other (the commands kernel is shared)",
			applies: func(rel string) bool { return room(rel, "commands") != "" },
			allowed: func(p, dep listed) bool {
				return !within(dep.rel(), "commands") || dep.rel() == "commands" ||
					room(dep.rel(), "commands") == room(p.rel(), "commands")
			},
		},
		{
			name:    "the projection engine imports no read model",
			applies: func(rel string) bool { return within(rel, "projections/engine") },
			allowed: func(_, dep listed) bool {
				return !within(dep.rel(), "projections") || within(dep.rel(), "projections/engine")
			},
		},
		{
			name: "read models do not import each other (the engine is shared; the catalog knows them all)",
			applies: func(rel string) bool {
				r := room(rel, "projections")
				return r != "" && r != "engine" && r != "catalog"
			},
			allowed: func(p, dep listed) bool {
				return !within(dep.rel(), "projections") || within(dep.rel(), "projections/engine") ||
					room(dep.rel(), "projections") == room(p.rel(), "projections")
			},
		},
		{
			name:    "adapters implement ports; they do not call sideways into other adapters",
			applies: func(rel string) bool { return room(rel, "adapters") != "" },
			allowed: func(p, dep listed) bool {
				return !within(dep.rel(), "adapters") || dep.rel() == pgerr ||
					room(dep.rel(), "adapters") == room(p.rel(), "adapters")
			},
		},
	})
}

// Configuration is read in one place and passed down: the environment is
// read only by the programs' main files (which hand os.Getenv to run) and by
// the test configuration of deploy/testbackend.
func TestEnvironmentIsReadInOnePlace(t *testing.T) {
	ours, _ := goList(t)
	fset := token.NewFileSet()
	readers := map[string]bool{"Getenv": true, "LookupEnv": true} // os.Environ handed to a child process is not configuration
	checked := 0
	for _, p := range ours {
		for _, name := range p.GoFiles {
			file := relPath(p, name)
			if (within(p.rel(), "cmd") && name == "main.go") || file == "deploy/testbackend/testbackend.go" {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			require.NoError(t, err)
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || !readers[sel.Sel.Name] {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" {
					assert.Failf(t, "environment read outside configuration loading", "%s:%d: os.%s: read it in the program's configuration and pass the value down",
						file, fset.Position(sel.Pos()).Line, sel.Sel.Name)
				}
				return true
			})
		}
	}
	require.NotZero(t, checked, "no files checked")
}

// Every package says what it owns, and every exported name has a sentence,
// so `go doc` reads as documentation. Generated files are exempt (the gen
// package explains itself in its hand-written doc.go).
func TestEveryPackageAndExportedNameIsDocumented(t *testing.T) {
	ours, _ := goList(t)
	fset := token.NewFileSet()
	for _, p := range ours {
		t.Run(p.rel(), func(t *testing.T) {
			hasDoc := false
			for _, name := range p.GoFiles {
				path := filepath.Join(p.Dir, name)
				f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
				require.NoError(t, err)
				if ast.IsGenerated(f) {
					continue
				}
				if f.Doc != nil {
					hasDoc = true
				}
				for _, missing := range undocumented(f) {
					pos := fset.Position(missing.Pos())
					assert.Failf(t, "undocumented name", "%s:%d: exported %s has no doc comment", filepath.ToSlash(relPath(p, name)), pos.Line, missing.Name)
				}
			}
			assert.True(t, hasDoc, "package %s has no package doc comment (add a doc.go saying what it owns)", p.ImportPath)
		})
	}
}

func relPath(p listed, file string) string {
	if p.rel() == "." {
		return file
	}
	return p.rel() + "/" + file
}

// undocumented returns the exported top-level names of f without a doc
// comment. In a grouped const, var or type declaration a comment on the
// group or on the spec is enough.
func undocumented(f *ast.File) []*ast.Ident {
	var out []*ast.Ident
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.IsExported() && d.Doc == nil {
				out = append(out, d.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				var names []*ast.Ident
				var doc *ast.CommentGroup
				switch s := spec.(type) {
				case *ast.TypeSpec:
					names, doc = []*ast.Ident{s.Name}, s.Doc
				case *ast.ValueSpec:
					names, doc = s.Names, s.Doc
				}
				if d.Doc != nil || doc != nil {
					continue
				}
				for _, n := range names {
					if n.IsExported() {
						out = append(out, n)
					}
				}
			}
		}
	}
	return out
}

// The checker itself must catch what it is meant to catch.
func TestUndocumentedFindsMissingDocs(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"documented func", "// F does.\nfunc F() {}", nil},
		{"undocumented func", "func F() {}", []string{"F"}},
		{"unexported func", "func f() {}", nil},
		{"methods are not top-level", "type t int\nfunc (t) M() {}", nil},
		{"undocumented type", "type T int", []string{"T"}},
		{"doc on the group", "// Kinds.\nconst (\n\tA = 1\n\tB = 2\n)", nil},
		{"doc on the spec", "const (\n\t// A is.\n\tA = 1\n\tB = 2\n)", []string{"B"}},
		{"grouped vars", "var (\n\tX, y int\n\t_ = 1\n)", []string{"X"}},
		{"grouped types", "type (\n\t// T is.\n\tT int\n\tU int\n)", []string{"U"}},
		{"a line comment is not a doc", "var V int // V is.", []string{"V"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\n"+c.src, parser.ParseComments)
			require.NoError(t, err)
			var got []string
			for _, id := range undocumented(f) {
				got = append(got, id.Name)
			}
			assert.Equal(t, c.want, got, "undocumented names")
		})
	}
}
