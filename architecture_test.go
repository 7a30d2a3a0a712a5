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
	"slices"
	"strings"
	"testing"
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
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	all = map[string]listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		all[p.ImportPath] = p
		if !p.DepOnly && p.rel() != "" {
			ours = append(ours, p)
		}
	}
	if len(ours) == 0 {
		t.Fatal("go list found no packages of the module")
	}
	return ours, all
}

// Dependencies point inward: the domain knows nothing but itself and the
// standard library, the application layers know no technology, and only
// cmd wires adapters together.
func TestDependenciesPointInward(t *testing.T) {
	ours, all := goList(t)
	rules := []struct {
		name    string
		applies func(rel string) bool
		allowed func(dep listed) bool
	}{
		{
			name:    "domain imports only the standard library and domain",
			applies: func(rel string) bool { return within(rel, "domain") },
			allowed: func(dep listed) bool { return dep.Standard || within(dep.rel(), "domain") },
		},
		{
			name:    "commands import no adapters and no cmd",
			applies: func(rel string) bool { return within(rel, "commands") },
			allowed: func(dep listed) bool { return !within(dep.rel(), "adapters", "cmd") },
		},
		{
			name:    "command packages do not import each other",
			applies: func(rel string) bool { return strings.HasPrefix(rel, "commands/") },
			allowed: func(dep listed) bool {
				return !strings.HasPrefix(dep.rel(), "commands/") || within(dep.rel(), "commands/internal")
			},
		},
		{
			name:    "projections import no adapters and no cmd",
			applies: func(rel string) bool { return within(rel, "projections") },
			allowed: func(dep listed) bool { return !within(dep.rel(), "adapters", "cmd") },
		},
		{
			name:    "eventstore imports no adapters, commands or projections",
			applies: func(rel string) bool { return within(rel, "eventstore") },
			allowed: func(dep listed) bool { return !within(dep.rel(), "adapters", "commands", "projections", "cmd") },
		},
		{
			name:    "only cmd imports cmd",
			applies: func(rel string) bool { return !within(rel, "cmd") },
			allowed: func(dep listed) bool { return !within(dep.rel(), "cmd") },
		},
	}
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
						t.Errorf("%s depends on %s, which go list did not describe", p.ImportPath, path)
						continue
					}
					if !r.allowed(dep) {
						t.Errorf("%s depends on %s", p.ImportPath, path)
					}
				}
			}
			if checked == 0 {
				t.Error("the rule applies to no package: a layer was renamed or moved")
			}
		})
	}
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
				if err != nil {
					t.Fatal(err)
				}
				if ast.IsGenerated(f) {
					continue
				}
				if f.Doc != nil {
					hasDoc = true
				}
				for _, missing := range undocumented(f) {
					pos := fset.Position(missing.Pos())
					t.Errorf("%s:%d: exported %s has no doc comment", filepath.ToSlash(relPath(p, name)), pos.Line, missing.Name)
				}
			}
			if !hasDoc {
				t.Errorf("package %s has no package doc comment (add a doc.go saying what it owns)", p.ImportPath)
			}
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
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, id := range undocumented(f) {
				got = append(got, id.Name)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("undocumented = %v, want %v", got, c.want)
			}
		})
	}
}
