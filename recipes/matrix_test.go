package recipes

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// matrixRecipe has two builds that differ by firmware.
const matrixRecipe = baseRecipe + `
[variables.firmware]
default = "bios"

[variables.token]
default = "t0"
sensitive = true

[vm]
firmware = "{{ .Vars.firmware }}"

[[matrix]]
name = "{{ .Name }}-{{ .Vars.firmware }}"

[[matrix]]
name = "{{ .Name }}-efi"
vars = { firmware = "efi", token = "t1" }
`

// loadAllError loads path with LoadAll and returns the error text with the
// directory of path removed.
func loadAllError(t *testing.T, path string, opts LoadOptions) string {
	t.Helper()
	list, err := LoadAll(path, opts)
	if err == nil {
		t.Fatalf("LoadAll succeeded with %d builds, want an error", len(list))
	}
	var errs ErrorList
	if !errors.As(err, &errs) {
		t.Fatalf("LoadAll error is %T, want ErrorList", err)
	}
	return strings.ReplaceAll(err.Error(), filepath.Dir(path)+string(filepath.Separator), "")
}

func TestLoadAllMatrix(t *testing.T) {
	path := writeRecipe(t, matrixRecipe)
	list, err := LoadAll(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("LoadAll returned %d builds, want 2", len(list))
	}
	tests := []struct {
		name     string
		firmware string
		machine  string
		secret   string
	}{
		{name: "test-bios", firmware: "bios", machine: "pc", secret: "t0"},
		{name: "test-efi", firmware: "efi", machine: "q35", secret: "t1"},
	}
	for i, tt := range tests {
		r := list[i]
		if r.Name != tt.name {
			t.Errorf("build %d: Name = %q, want %q", i, r.Name, tt.name)
		}
		if r.VM.Firmware != tt.firmware {
			t.Errorf("build %d: VM.Firmware = %q, want %q", i, r.VM.Firmware, tt.firmware)
		}
		if r.VM.Machine != tt.machine {
			t.Errorf("build %d: VM.Machine = %q, want %q", i, r.VM.Machine, tt.machine)
		}
		if r.Vars["firmware"] != tt.firmware {
			t.Errorf("build %d: Vars[firmware] = %q, want %q", i, r.Vars["firmware"], tt.firmware)
		}
		if want := filepath.Join("output", tt.name); !strings.HasSuffix(r.Output.Directory, want) {
			t.Errorf("build %d: Output.Directory = %q, want it to end in %q", i, r.Output.Directory, want)
		}
		if r.Output.Filename != tt.name {
			t.Errorf("build %d: Output.Filename = %q, want %q", i, r.Output.Filename, tt.name)
		}
		if len(r.Secrets) != 1 || r.Secrets[0] != tt.secret {
			t.Errorf("build %d: Secrets = %q, want [%q]", i, r.Secrets, tt.secret)
		}
	}
}

func TestLoadAllWithoutMatrix(t *testing.T) {
	list, err := LoadAll(writeRecipe(t, baseRecipe), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "test" {
		t.Fatalf("LoadAll returned %d builds, want the one recipe named test", len(list))
	}
}

func TestLoadAllMatrixWithoutName(t *testing.T) {
	recipe := strings.Replace(baseRecipe, `name = "test"`, "", 1) + `
[[matrix]]
name = "first"
[[matrix]]
name = "second"
`
	list, err := LoadAll(writeRecipe(t, recipe), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "first" || list[1].Name != "second" {
		t.Errorf("LoadAll returned %d builds, want first and second", len(list))
	}
}

func TestLoadAllOverrideBeatsMatrix(t *testing.T) {
	path := writeRecipe(t, matrixRecipe)
	list, err := LoadAll(path, LoadOptions{Vars: map[string]string{"token": "cli"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if r.Vars["token"] != "cli" {
			t.Errorf("build %s: Vars[token] = %q, want the --var value %q", r.Name, r.Vars["token"], "cli")
		}
	}
}

func TestLoadRejectsMatrix(t *testing.T) {
	got := loadError(t, writeRecipe(t, matrixRecipe), LoadOptions{})
	want := "recipe.toml: matrix: recipe declares 2 matrix builds: load it with LoadAll"
	if got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoadAllMatrixErrors(t *testing.T) {
	tests := []struct {
		name   string
		recipe string
		want   string
	}{
		{
			name: "duplicate names",
			recipe: baseRecipe + `
[[matrix]]
name = "a"
[[matrix]]
name = "a"
`,
			want: `recipe.toml:9:1: matrix[1].name: duplicate build name "a":` +
				` recipe.toml:7:1 (matrix[0].name) already uses it, give each build a distinct name`,
		},
		{
			name: "shared output directory",
			recipe: baseRecipe + `
[output]
directory = "out"
[[matrix]]
name = "a"
[[matrix]]
name = "b"
`,
			want: `recipe.toml:11:1: matrix[1].name: build "b" writes to output directory OUT, as build "a"` +
				` at recipe.toml:9:1 (matrix[0].name) does: use {{ .Name }} in output.directory so each build has its own`,
		},
		{
			name: "unknown key and variable",
			recipe: baseRecipe + `
[[matrix]]
nmae = "a"
vars = { nope = "x" }
`,
			want: "recipe.toml:6:3: matrix[0].name: missing: set a build name such as \"{{ .Name }}-1\"\n" +
				"recipe.toml:7:1: matrix[0].nmae: unknown key, expected one of: name, vars\n" +
				"recipe.toml:8:10: matrix[0].vars.nope: unknown variable \"nope\": the recipe declares no variables," +
				" add a [variables.nope] table",
		},
		{
			name:   "wrong types",
			recipe: "matrix = \"x\"\n" + baseRecipe,
			want:   `recipe.toml:1:1: matrix: expected an array of tables ([[matrix]]), got a string ("x")`,
		},
		{
			name: "error in one build only",
			recipe: baseRecipe + `
[variables.memory]
default = "1GiB"
[vm]
memory = "{{ .Vars.memory }}"
[[matrix]]
name = "small"
[[matrix]]
name = "huge"
vars = { memory = "99999TiB" }
`,
			want: `recipe.toml:9:1: vm.memory: invalid size "99999TiB": larger than the 64TiB maximum` +
				` (in build "huge", matrix[1])`,
		},
		{
			name:   "entry not a table",
			recipe: "matrix = [{ name = \"a\" }, 3, { name = \"b\" }]\n" + baseRecipe,
			want:   `recipe.toml:1:27: matrix[1]: expected a table, got an integer (3)`,
		},
		{
			name:   "misspelt matrix key",
			recipe: baseRecipe + "\n[[matrx]]\nname = \"a\"\n",
			want:   `recipe.toml:6:3: matrx: unknown key, did you mean "matrix"?`,
		},
		{
			name: "sensitive value in build name",
			recipe: baseRecipe + `
[variables.key]
default = "k3y"
sensitive = true
[[matrix]]
name = "{{ .Name }}-{{ .Vars.key }}"
`,
			want: `recipe.toml:10:1: matrix[0].name: build name contains the value of a sensitive variable:` +
				` build names appear unmasked in paths and logs, so use a variable that is not sensitive`,
		},
		{
			name: "invalid build name",
			recipe: baseRecipe + `
[[matrix]]
name = "{{ .Name }}/x"
`,
			want: `recipe.toml:7:1: matrix[0].name: invalid name "test/x": use letters, digits, '.', '_' and '-',` +
				` starting with a letter or digit`,
		},
		{
			name: "build-time field in name",
			recipe: baseRecipe + `
[[matrix]]
name = "{{ .HTTPPort }}"
`,
			want: `recipe.toml:7:1: matrix[0].name: .HTTPPort is only known during the build, so it cannot be used here:` +
				` use it in boot.command, vm.append, http.content, cloud_init data or provisioners`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRecipe(t, tt.recipe)
			got := loadAllError(t, path, LoadOptions{})
			want := strings.ReplaceAll(tt.want, "OUT", filepathAbs(t, "out"))
			if got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func filepathAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestCheckDistinctAcrossFiles(t *testing.T) {
	a, err := LoadAll(writeRecipe(t, baseRecipe), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadAll(writeRecipe(t, baseRecipe), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs := CheckDistinct(append(a, b...))
	if len(errs) != 1 {
		t.Fatalf("CheckDistinct returned %d errors, want 1: %v", len(errs), errs)
	}
	got := errs[0].Error()
	wantPrefix := b[0].origin.file + ":1:1: name: duplicate build name \"test\": " + a[0].origin.file + ":1:1 already uses it"
	if !strings.HasPrefix(got, wantPrefix) {
		t.Errorf("error:\n%s\nwant prefix:\n%s", got, wantPrefix)
	}
}
