package recipes

import (
	"path/filepath"
	"testing"
)

func TestLoadShippedRecipes(t *testing.T) {
	paths, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no shipped recipes found in recipes/*.toml")
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			if _, err := Load(path, LoadOptions{}); err != nil {
				t.Fatalf("Load(%q) failed:\n%v", path, err)
			}
		})
	}
}
