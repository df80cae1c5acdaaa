package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bakeimg/bake/disk"
)

// stepSeedMedia builds the cloud-init NoCloud CD from the recipe's
// templates and files.
type stepSeedMedia struct{}

func (*stepSeedMedia) Name() string { return "seed" }

func (*stepSeedMedia) Run(ctx context.Context, s *State) error {
	ci := s.Recipe.CloudInit
	if ci.UserData == "" && ci.MetaData == "" && ci.NetworkConfig == "" && len(ci.Files) == 0 {
		return nil
	}
	files := map[string][]byte{}
	for _, entry := range []struct{ name, text string }{
		{"user-data", ci.UserData},
		{"meta-data", ci.MetaData},
		{"network-config", ci.NetworkConfig},
	} {
		if entry.text == "" {
			continue
		}
		rendered, err := s.render(entry.text)
		if err != nil {
			return fmt.Errorf("cloud_init %s: %w", entry.name, err)
		}
		files[entry.name] = []byte(rendered)
	}
	// NoCloud needs meta-data to exist even when it is empty.
	if _, ok := files["meta-data"]; !ok {
		files["meta-data"] = []byte(fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", s.Recipe.Name, s.Recipe.Name))
	}
	for name, path := range ci.Files {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("cloud_init.files %q: %w", name, err)
		}
		files[name] = b
	}
	s.SeedISO = filepath.Join(s.WorkDir, "seed.iso")
	label := ci.Label
	if label == "" {
		label = "cidata"
	}
	if err := disk.WriteSeedISO(s.SeedISO, label, files); err != nil {
		return err
	}
	return nil
}

func (*stepSeedMedia) Cleanup(*State) error { return nil }
