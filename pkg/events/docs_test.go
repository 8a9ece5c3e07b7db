package events

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the monorepo holding this module, for the tests that read its docs and
// its producers' code; they skip when the module is built elsewhere.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Skipf("not in the monorepo: %v", err)
	}
	return root
}

var (
	docRow       = regexp.MustCompile("^\\| `(auth\\.[a-z_]+\\.[a-z_]+)` \\|(.*)\\|$")
	docSubject   = regexp.MustCompile("`(auth\\.[a-z_]+\\.[a-z_]+)`")
	backticked   = regexp.MustCompile("`([^`]+)`")
	parenthetics = regexp.MustCompile(`\([^()]*\)`)
)

// docFields are the payload fields a docs/events.md payload cell names: its backticked
// words, those in parentheses (values, notes) aside.
func docFields(cell string) []string {
	for {
		stripped := parenthetics.ReplaceAllString(cell, "")
		if stripped == cell {
			break
		}
		cell = stripped
	}
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// TestDocsMatchCatalog checks docs/events.md against the catalog: one table row per
// subject, naming exactly the payload's keys (as on the wire), the user and actor
// envelope fields it sets and the worker's readers; and no other subject anywhere.
func TestDocsMatchCatalog(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "events.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rows := map[string][]string{}
	for _, line := range strings.Split(doc, "\n") {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/events.md: %s has two rows", m[1])
		}
		cells := strings.Split(m[2], "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[m[1]] = cells
	}
	for _, m := range docSubject.FindAllStringSubmatch(doc, -1) {
		if _, ok := Lookup(m[1]); !ok {
			t.Errorf("docs/events.md names %s, which is no event", m[1])
		}
	}
	for _, s := range Catalog() {
		cells, ok := rows[s.Subject]
		if !ok {
			t.Errorf("docs/events.md: no row for %s", s.Subject)
			continue
		}
		delete(rows, s.Subject)
		// when | payload | user | actor | worker
		if len(cells) != 5 {
			t.Errorf("docs/events.md: the row of %s has %d cells after the subject, want 5: %q", s.Subject, len(cells), cells)
			continue
		}
		var want []string
		fields := jsonFields(s.Payload, false)
		user, actor := "", ""
		for _, f := range fields {
			switch f.key {
			case FieldToken, FieldCode:
				continue // documented as token_sealed and code_sealed
			case FieldUserID:
				user = "✓"
				if f.optional {
					user = "✓ when known"
				}
			case FieldActorID:
				actor = "✓"
			}
			want = append(want, f.key)
		}
		slices.Sort(want)
		if got := docFields(cells[1]); !slices.Equal(got, want) {
			t.Errorf("docs/events.md: %s payload %v, the %s struct has %v", s.Subject, got, s.Payload.Name(), want)
		}
		if cells[2] != user || cells[3] != actor {
			t.Errorf("docs/events.md: %s user %q actor %q, want %q %q", s.Subject, cells[2], cells[3], user, actor)
		}
		var readers []string
		for r := range strings.SplitSeq(cells[4], ",") {
			readers = append(readers, strings.TrimSpace(r))
		}
		if !sameSet(readers, s.Readers) {
			t.Errorf("docs/events.md: %s worker %v, the catalog says %v", s.Subject, readers, s.Readers)
		}
	}
	for subject := range rows {
		t.Errorf("docs/events.md documents %s, which the catalog lacks", subject)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}

func TestDocFields(t *testing.T) {
	got := docFields("`user_id`, `how` (`reset` or `change`, (nested `x`)), `ip`; or `user_id`, `email_sha256` (never the address)")
	if want := []string{"email_sha256", "how", "ip", "user_id"}; !slices.Equal(got, want) {
		t.Fatalf("docFields = %v, want %v", got, want)
	}
}
