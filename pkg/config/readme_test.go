package config

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeConfiguration is the "## Configuration" section of the repository's README.
func readmeConfiguration(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## Configuration\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section := readme[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	return section
}

// markdownTables returns the section's tables, each as its rows of trimmed cells
// (the header row first, the |---| row left out).
func markdownTables(section string) [][][]string {
	var tables [][][]string
	var rows [][]string
	for _, line := range append(strings.Split(section, "\n"), "") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if rows != nil {
				tables, rows = append(tables, rows), nil
			}
			continue
		}
		cells := splitCells(strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|"))
		if strings.Trim(strings.Join(cells, ""), "-: ") == "" {
			continue // the |---|---| row
		}
		rows = append(rows, cells)
	}
	return tables
}

// splitCells splits a table row at the pipes that are not escaped (\|).
func splitCells(row string) []string {
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cell.WriteByte('|')
			i++
		case row[i] == '|':
			cells, cell = append(cells, strings.TrimSpace(cell.String())), strings.Builder{}
		default:
			cell.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

var backticked = regexp.MustCompile("`([^`]*)`")

// codeSpans are the `...` spans of s.
func codeSpans(s string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// readmeDefault is how the README's table writes s's default.
func readmeDefault(s setting) []string {
	switch {
	case s.readme != "":
		return []string{s.readme}
	case s.def == "":
		return []string{"empty", "-"}
	}
	return []string{"`" + s.def + "`"}
}

// The README's configuration table documents every setting of the table, with its
// default, and nothing else; the sentence above it names the secrets (NAME_FILE).
func TestREADMEConfigurationTableMatchesTheSettings(t *testing.T) {
	for _, problem := range readmeProblems(readmeConfiguration(t), settings(&Config{}, "")) {
		t.Error(problem)
	}
}

// readmeProblems lists where the README's Configuration section and the table disagree.
func readmeProblems(section string, table []setting) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	tables := markdownTables(section)
	if len(tables) == 0 || !slices.Equal(tables[0][0], []string{"variable", "default", "meaning"}) {
		report("the Configuration section does not start with a | variable | default | meaning | table")
		return problems
	}
	known := byName(table)
	documented := map[string]bool{}
	for _, row := range tables[0][1:] {
		if len(row) != 3 {
			report("row %q: want 3 cells", row)
			continue
		}
		names := codeSpans(row[0])
		if len(names) == 0 {
			report("row %q names no `VARIABLE`", row)
			continue
		}
		// One default for all the row's variables, or one each, comma-separated.
		defaults := []string{row[1]}
		if parts := strings.Split(row[1], ", "); len(names) > 1 && len(parts) > 1 {
			defaults = parts
			if len(parts) != len(names) {
				report("row %q: %d defaults for %d variables", row[0], len(parts), len(names))
				continue
			}
		}
		for i, name := range names {
			s, ok := known[name]
			if !ok {
				report("README documents %s, which is not in pkg/config's table", name)
				continue
			}
			if documented[name] {
				report("README documents %s twice", name)
			}
			documented[name] = true
			got := defaults[min(i, len(defaults)-1)]
			if want := readmeDefault(s); !slices.Contains(want, got) {
				report("README gives %s the default %q, want %s", name, got, strings.Join(want, " or "))
			}
		}
	}
	for _, s := range table {
		if !documented[s.name] {
			report("%s (default %q) is missing from the README's configuration table", s.name, s.def)
		}
	}
	// The token-worker's own settings have a table of their own; none of pkg/config's.
	for _, other := range tables[1:] {
		for _, row := range other[1:] {
			for _, name := range codeSpans(row[0]) {
				if _, ok := known[name]; ok {
					report("%s is in a later table of the README's Configuration section (the token-worker's own settings): it belongs in the first", name)
				}
			}
		}
	}

	m := regexp.MustCompile(`Secrets \(([^)]*)\)\s+may be given as\s+` + "`NAME_FILE`").FindStringSubmatch(section)
	if m == nil {
		report("the Configuration section does not say which secrets may be given as `NAME_FILE`")
		return problems
	}
	listed := map[string]bool{}
	for _, pattern := range codeSpans(m[1]) {
		matched := false
		for _, s := range table {
			if ok, _ := path.Match(pattern, s.name); ok {
				listed[s.name], matched = true, true
			}
		}
		if !matched {
			report("README lists %s among the secrets: no setting matches", pattern)
		}
	}
	for _, s := range table {
		switch {
		case s.secret && !listed[s.name]:
			report("%s may be given as %s_FILE, but the README does not list it among the secrets", s.name, s.name)
		case !s.secret && listed[s.name]:
			report("README lists %s among the secrets (NAME_FILE), but pkg/config does not read %s_FILE", s.name, s.name)
		}
	}
	return problems
}
