package events

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const importPath = "github.com/talentforge/auth/pkg/events"

// codeUse is where the monorepo's code (tests and test helpers aside) names a subject.
type codeUse struct {
	// owner is "auth", "oauth" or "token-worker" for code under services/, else the
	// package directory (shared code, e.g. under pkg/).
	owner string
	pos   string
}

var literalSubject = regexp.MustCompile(`^auth\.[a-z_]+\.[a-z_]+$`)

// subjectUses reads every non-test Go file of the monorepo outside this package and
// returns, per subject, where an events.Subject* constant names it. A subject written
// as a string literal instead is an error: subjects come from the constants.
func subjectUses(t *testing.T, root string) map[string][]codeUse {
	t.Helper()
	consts := subjectConstants(t)
	uses := map[string][]codeUse{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasSuffix(name, "test") || name == "testdata" ||
				name == "vendor" || name == "node_modules" || rel == "e2e" || rel == "pkg/events") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		owner := filepath.ToSlash(filepath.Dir(rel))
		if rest, ok := strings.CutPrefix(rel, "services/"); ok {
			owner, _, _ = strings.Cut(rest, "/")
		}
		local := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == importPath {
				local = "events"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && local != "" && x.Name == local {
					if v, ok := consts[n.Sel.Name]; ok {
						uses[v] = append(uses[v], codeUse{owner: owner, pos: fset.Position(n.Pos()).String()})
					}
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					if s, _ := strconv.Unquote(n.Value); literalSubject.MatchString(s) {
						t.Errorf("%s: the subject %s is a literal; use its events.Subject constant", fset.Position(n.Pos()), s)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return uses
}

// TestPublishersInCode holds the catalog's publishers to the code: every subject is
// named by each service the catalog says publishes it (or by shared code), by no other
// service, and every subject the token-worker's code names is one a producer's code
// names too.
func TestPublishersInCode(t *testing.T) {
	root := repoRoot(t)
	uses := subjectUses(t, root)
	producers := []string{PublisherAuth, PublisherOAuth}
	for _, s := range Catalog() {
		byOwner := map[string][]string{}
		shared := false
		for _, u := range uses[s.Subject] {
			byOwner[u.owner] = append(byOwner[u.owner], u.pos)
			if !slices.Contains(producers, u.owner) && u.owner != "token-worker" {
				shared = true
			}
		}
		for _, p := range producers {
			switch {
			case s.Publishes(p) && len(byOwner[p]) == 0 && !shared:
				t.Errorf("%s: the catalog says %s publishes it; no code of services/%s names it", s.Subject, p, p)
			case !s.Publishes(p) && len(byOwner[p]) > 0:
				t.Errorf("%s: services/%s names it (%s); the catalog lacks %s among its publishers", s.Subject, p, byOwner[p][0], p)
			}
		}
		if worker := byOwner["token-worker"]; len(worker) > 0 {
			if len(uses[s.Subject]) == len(worker) && !s.Publishes(PublisherTokenWorker) {
				t.Errorf("%s: the token-worker reads it (%s) and no producer's code writes it", s.Subject, worker[0])
			}
			if !s.ReadBy(ReaderEmail) && !s.ReadBy(ReaderSMS) {
				t.Errorf("%s: the token-worker names it (%s); the catalog says only %v read it", s.Subject, worker[0], s.Readers)
			}
		}
		if s.ReadBy(ReaderEmail) && len(byOwner["token-worker"]) == 0 {
			t.Errorf("%s: the catalog says the worker mails it; no token-worker code names it", s.Subject)
		}
		if s.ReadBy(ReaderSMS) && len(byOwner["token-worker"]) == 0 {
			t.Errorf("%s: the catalog says the worker texts it; no token-worker code names it", s.Subject)
		}
	}
}
