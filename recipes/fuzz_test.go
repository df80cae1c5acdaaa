package recipes

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzLoad(f *testing.F) {
	seeds := []string{
		baseRecipe,
		variablesRecipe,
		"name = \"x\"\n[[provision]]\nshell = [\"{{ .Vars.a }}\"]\n[[provision.b]]\n",
		"[variables.a]\ndefault = \"{{ .Vars.a }}\"\n",
		"[vm]\nmemory = \"{{ user `x` }}\"\ndisk_size = 5\n",
		"a = [[1, {b = 2}], []]\n[x.\"y.z\"]\n",
		"name = \"te\x00st\"",
		"a = [1, {b = \n",
		"[[a]]\n[a]\n[[a.b]]\nc.d = 1\n",
		"\xff\xfe",
	}
	if shipped, err := os.ReadFile("debian-12-cloud.toml"); err == nil {
		seeds = append(seeds, string(shipped))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	dir := f.TempDir()
	writeFileF(f, filepath.Join(dir, "base.qcow2"))
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Load(path, LoadOptions{Vars: map[string]string{"mirror": "m"}})
		if (r == nil) == (err == nil) {
			t.Fatalf("Load returned recipe %v and error %v, want exactly one", r != nil, err)
		}
	})
}

func writeFileF(f *testing.F, path string) {
	if err := os.WriteFile(path, []byte("content"), 0o644); err != nil {
		f.Fatal(err)
	}
}
