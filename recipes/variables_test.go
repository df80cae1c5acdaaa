package recipes

import (
	"path/filepath"
	"slices"
	"testing"
)

const variablesRecipe = `name = "test"

[variables.mirror]
default = "deb.debian.org"

[variables.release]
default = "1"

[source]
disk_image = "base.qcow2"
`

func TestVariablePrecedence(t *testing.T) {
	tests := []struct {
		name     string
		environ  []string
		varFiles []string // contents, written to files in order
		vars     map[string]string
		want     map[string]string
	}{
		{
			name: "defaults only",
			want: map[string]string{"mirror": "deb.debian.org", "release": "1"},
		},
		{
			name:    "environment over default",
			environ: []string{"BAKE_VAR_release=2", "PATH=/bin", "BAKE_VAR_other=ignored"},
			want:    map[string]string{"mirror": "deb.debian.org", "release": "2"},
		},
		{
			name:     "variable file over environment",
			environ:  []string{"BAKE_VAR_release=2"},
			varFiles: []string{"release = \"3\"\n"},
			want:     map[string]string{"mirror": "deb.debian.org", "release": "3"},
		},
		{
			name:     "later variable file wins",
			varFiles: []string{"release = \"3\"\nmirror = \"a\"\n", "release = \"4\"\n"},
			want:     map[string]string{"mirror": "a", "release": "4"},
		},
		{
			name:     "command line over everything",
			environ:  []string{"BAKE_VAR_release=2"},
			varFiles: []string{"release = \"3\"\n"},
			vars:     map[string]string{"release": "5"},
			want:     map[string]string{"mirror": "deb.debian.org", "release": "5"},
		},
		{
			name: "empty value overrides default",
			vars: map[string]string{"mirror": ""},
			want: map[string]string{"mirror": "", "release": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRecipe(t, variablesRecipe)
			opts := LoadOptions{Environ: tt.environ, Vars: tt.vars}
			for i, text := range tt.varFiles {
				file := filepath.Join(t.TempDir(), "vars"+string(rune('a'+i))+".toml")
				writeFile(t, file, text)
				opts.VarFiles = append(opts.VarFiles, file)
			}
			r, err := Load(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				if got := r.Vars[name]; got != want {
					t.Errorf("Vars[%q] = %q, want %q", name, got, want)
				}
			}
			if len(r.Vars) != len(tt.want) {
				t.Errorf("Vars = %v, want %d entries", r.Vars, len(tt.want))
			}
		})
	}
}

func TestVariableErrors(t *testing.T) {
	tests := []struct {
		name    string
		recipe  string
		varFile string
		vars    map[string]string
		want    string
	}{
		{
			name:   "unknown variable on command line",
			recipe: variablesRecipe,
			vars:   map[string]string{"mirrorr": "x"},
			want:   `--var mirrorr: unknown variable "mirrorr": declared variables are mirror, release`,
		},
		{
			name:    "unknown variable in file",
			recipe:  variablesRecipe,
			varFile: "release = \"2\"\nrelaese = \"3\"\n",
			want:    `vars.toml:2:1: relaese: unknown variable "relaese": declared variables are mirror, release`,
		},
		{
			name:    "wrong type in file",
			recipe:  variablesRecipe,
			varFile: "release = 2\n",
			want:    `vars.toml:1:1: release: expected a string, got an integer (2)`,
		},
		{
			name:    "syntax error in file",
			recipe:  variablesRecipe,
			varFile: "release = \n",
			want:    `vars.toml:1:11: invalid TOML: unexpected character U+000A at start of value`,
		},
		{
			name:   "no default and no value",
			recipe: baseRecipe + "[variables.token]\nsensitive = true\n",
			want: `recipe.toml:5:12: variables.token: no default and no value: ` +
				`set it with --var token=VALUE, a variable file or BAKE_VAR_token`,
		},
		{
			name:   "invalid variable name",
			recipe: baseRecipe + "[variables.\"my-var\"]\ndefault = \"x\"\n",
			want: `recipe.toml:5:12: variables.my-var: invalid variable name: ` +
				`use letters, digits and underscores, starting with a letter or underscore`,
		},
		{
			name:   "default refers to itself",
			recipe: baseRecipe + "[variables.a]\ndefault = \"x{{ .Vars.a }}\"\n",
			want:   `recipe.toml:6:1: variables.a.default: variable default refers to itself: a -> a`,
		},
		{
			name: "defaults refer to each other",
			recipe: baseRecipe + "[variables.a]\ndefault = \"{{ .Vars.b }}\"\n" +
				"[variables.b]\ndefault = \"{{ user `c` }}\"\n" +
				"[variables.c]\ndefault = \"{{ .Vars.a }}\"\n",
			want: `recipe.toml:6:1: variables.a.default: variable default refers to itself: a -> b -> c -> a`,
		},
		{
			name:   "default refers to unknown variable",
			recipe: baseRecipe + "[variables.a]\ndefault = \"{{ .Vars.b }}\"\n",
			want:   `recipe.toml:6:1: variables.a.default: unknown variable "b": declared variables are a`,
		},
		{
			name:   "default uses build-time field",
			recipe: baseRecipe + "[variables.a]\ndefault = \"{{ .HTTPIP }}\"\n",
			want: `recipe.toml:6:1: variables.a.default: .HTTPIP is only known during the build, so it cannot be used here:` +
				` use it in boot.command, vm.append, http.content, cloud_init data or provisioners`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRecipe(t, tt.recipe)
			opts := LoadOptions{Vars: tt.vars}
			if tt.varFile != "" {
				file := filepath.Join(filepath.Dir(path), "vars.toml")
				writeFile(t, file, tt.varFile)
				opts.VarFiles = []string{file}
			}
			if got := loadError(t, path, opts); got != tt.want {
				t.Errorf("error mismatch\ngot:  %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestVariableFileNotFound(t *testing.T) {
	path := writeRecipe(t, variablesRecipe)
	missing := filepath.Join(filepath.Dir(path), "absent.toml")
	got := loadError(t, path, LoadOptions{VarFiles: []string{missing}})
	if want := "absent.toml: variable file not found: check the path"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestVariableDefaultsChain(t *testing.T) {
	path := writeRecipe(t, `name = "chain"

[variables.host]
default = "example.com"

[variables.url]
default = 'https://{{ .Vars.host }}/{{ .Name }}/{{ user "file" }}'

[variables.file]
default = "base.qcow2"

[source]
disk_image = "{{ .Vars.file }}"
`)
	r, err := Load(path, LoadOptions{Vars: map[string]string{"host": "mirror.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://mirror.test/chain/base.qcow2"; r.Vars["url"] != want {
		t.Errorf("Vars[url] = %q, want %q", r.Vars["url"], want)
	}
	if want := filepath.Join(filepath.Dir(path), "base.qcow2"); r.Source.DiskImage != want {
		t.Errorf("Source.DiskImage = %q, want %q", r.Source.DiskImage, want)
	}
}

func TestSensitiveValuesAreSecrets(t *testing.T) {
	path := writeRecipe(t, `name = "secret"

[variables.password]
sensitive = true

[variables.token]
sensitive = true
default = "tok-123"

[variables.visible]
default = "plain"

[source]
disk_image = "base.qcow2"

[ssh]
username = "admin"
password = "{{ .Vars.password }}"
`)
	r, err := Load(path, LoadOptions{Environ: []string{"BAKE_VAR_password=hunter2"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.SSH.Password != "hunter2" {
		t.Errorf("SSH.Password = %q, want %q", r.SSH.Password, "hunter2")
	}
	slices.Sort(r.Secrets)
	if want := []string{"hunter2", "tok-123"}; !slices.Equal(r.Secrets, want) {
		t.Errorf("Secrets = %q, want %q", r.Secrets, want)
	}
	if r.Shutdown.Command != "sudo -n poweroff" {
		t.Errorf("Shutdown.Command = %q for user admin, want %q", r.Shutdown.Command, "sudo -n poweroff")
	}
	if slices.Contains(r.Secrets, "plain") {
		t.Errorf("Secrets contains the value of a variable that is not sensitive")
	}
}

func TestPasswordIsSecret(t *testing.T) {
	path := writeRecipe(t, baseRecipe+"[ssh]\npassword = \"literal-pw\"\n")
	r, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Secrets, []string{"literal-pw"}) {
		t.Errorf("Secrets = %q, want [literal-pw]", r.Secrets)
	}
	if r.Shutdown.Command != "poweroff" {
		t.Errorf("Shutdown.Command = %q for user root, want %q", r.Shutdown.Command, "poweroff")
	}
}
