package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

var settingName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*[A-Z0-9]$`)

// serviceNames are the services (directories under services/, charts under charts/).
var serviceNames = []struct {
	svc  service
	name string
}{{svcAuth, "auth"}, {svcOAuth, "oauth"}, {svcTokenWorker, "token-worker"}}

// byName indexes the table.
func byName(table []setting) map[string]setting {
	m := make(map[string]setting, len(table))
	for _, s := range table {
		m[s.name] = s
	}
	return m
}

func TestSettingsTableIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range settings(&Config{}, ":8081") {
		if !settingName.MatchString(s.name) {
			t.Errorf("%q is not an environment variable name (upper case, digits, _)", s.name)
		}
		if seen[s.name] {
			t.Errorf("%s is in the table twice", s.name)
		}
		seen[s.name] = true
		if s.readers == 0 || s.readers&^svcAll != 0 {
			t.Errorf("%s: readers %b must name one or more of auth, oauth, token-worker", s.name, s.readers)
		}
		if s.value.oneOf != nil && !slices.Contains(s.value.oneOf, s.def) {
			t.Errorf("%s: default %q is not one of %q", s.name, s.def, s.value.oneOf)
		}
	}
	for name := range seen {
		if seen[name+"_FILE"] {
			t.Errorf("%s_FILE is a setting and the file form of %s", name, name)
		}
	}
}

// Giving each setting its own default changes nothing: the defaults are valid values.
func TestSettingsDefaultsAreValidValues(t *testing.T) {
	want := mustLoad(t, ":8081", nil)
	for _, s := range settings(&Config{}, ":8081") {
		if got := mustLoad(t, ":8081", map[string]string{s.name: s.def}); !reflect.DeepEqual(got, want) {
			t.Errorf("%s=%q (its default) changes the configuration", s.name, s.def)
		}
	}
}

// NAME_FILE is read for the table's secrets and only for them, and what the file holds
// is read as if the variable held it.
func TestSecretFilesFollowTheTable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	def, err := Load(":8081", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings(&Config{}, ":8081") {
		t.Run(s.name, func(t *testing.T) {
			_, err := Load(":8081", env(map[string]string{s.name + "_FILE": missing}))
			if !s.secret {
				if err != nil {
					t.Fatalf("%s is no secret, yet %s_FILE is read: %v", s.name, s.name, err)
				}
				return
			}
			assertOneLineError(t, err, s.name+"_FILE")
			const content = "from-file"
			fromEnv, envErr := Load(":8081", env(map[string]string{s.name: content}))
			fromFile, fileErr := Load(":8081", env(map[string]string{s.name + "_FILE": writeFile(t, "secret", content+"\n")}))
			if fmt.Sprint(envErr) != fmt.Sprint(fileErr) || !reflect.DeepEqual(fromEnv, fromFile) {
				t.Fatalf("%s_FILE is not read as %s: %v / %v", s.name, s.name, fileErr, envErr)
			}
			if fileErr == nil && reflect.DeepEqual(fromFile, def) {
				t.Fatalf("%s_FILE changed nothing", s.name)
			}
		})
	}
}
