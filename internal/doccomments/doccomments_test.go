package doccomments

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// generated reports whether f carries Go's marker of generated code.
func generated(f *ast.File) bool {
	for _, c := range f.Comments {
		if c.Pos() > f.Package {
			break
		}
		for _, l := range c.List {
			if strings.HasPrefix(l.Text, "// Code generated ") && strings.HasSuffix(l.Text, " DO NOT EDIT.") {
				return true
			}
		}
	}
	return false
}

// receiverExported reports whether a method's receiver type is exported
// (a method of an unexported type is not part of any API).
func receiverExported(fd *ast.FuncDecl) bool {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return true
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

// undocumented lists f's exported names without a doc comment. In a
// parenthesized const, var or type block, a comment over an earlier entry
// documents the entries after it (a group), as godoc shows them.
func undocumented(fs *token.FileSet, f *ast.File) []string {
	var out []string
	miss := func(pos token.Pos, what string) {
		p := fs.Position(pos)
		out = append(out, p.Filename+":"+strconv.Itoa(p.Line)+": "+what)
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() && d.Doc == nil && receiverExported(d) {
				miss(d.Pos(), "func "+d.Name.Name)
			}
		case *ast.GenDecl:
			grouped := d.Doc != nil
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					grouped = grouped || s.Doc != nil
					if s.Name.IsExported() && !grouped && s.Comment == nil {
						miss(s.Pos(), "type "+s.Name.Name)
					}
				case *ast.ValueSpec:
					grouped = grouped || s.Doc != nil
					for _, n := range s.Names {
						if n.IsExported() && !grouped && s.Comment == nil {
							miss(n.Pos(), n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// TestEveryPackageAndExportedNameDocumented walks the repository from its
// root: a package directory without doc.go, or an exported name without a
// doc comment, fails the test with its place.
func TestEveryPackageAndExportedNameDocumented(t *testing.T) {
	root := filepath.Join("..", "..")
	var problems []string
	hasCode, hasDoc := map[string]bool{}, map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "build" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fs := token.NewFileSet()
		f, err := parser.ParseFile(fs, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if generated(f) {
			return nil
		}
		dir := filepath.Dir(path)
		hasCode[dir] = true
		if filepath.Base(path) == "doc.go" {
			hasDoc[dir] = true
			if f.Doc == nil {
				problems = append(problems, path+": doc.go has no package comment")
			}
		}
		problems = append(problems, undocumented(fs, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range hasCode {
		if !hasDoc[dir] {
			problems = append(problems, dir+": no doc.go saying what the package is for")
		}
	}
	if len(hasCode) < 20 {
		t.Fatalf("walked %d package directories from %s; the repository has more: is the root right?", len(hasCode), root)
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}
