package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/bakeimg/bake/disk"
	"github.com/bakeimg/bake/event"
)

// ManifestFile is the name of the manifest in the output directory.
const ManifestFile = "manifest.json"

// Manifest records what went into an image and how it was made.
type Manifest struct {
	Name        string               `json:"name"`
	RecipePath  string               `json:"recipe_path"`
	RecipeHash  string               `json:"recipe_sha256"`
	Variables   map[string]string    `json:"variables,omitempty"`
	Source      ManifestSource       `json:"source"`
	BakeVersion string               `json:"bake_version"`
	GoVersion   string               `json:"go_version"`
	QEMUVersion string               `json:"qemu_version"`
	QEMUImg     string               `json:"qemu_img_version"`
	Accelerator string               `json:"accelerator"`
	AccelNote   string               `json:"accelerator_note,omitempty"`
	Created     time.Time            `json:"created"`
	Steps       []Timing             `json:"steps"`
	Artifacts   []event.ArtifactInfo `json:"artifacts"`
	HostKey     string               `json:"guest_host_key,omitempty"`
	HostKeySHA  string               `json:"guest_host_key_fingerprint,omitempty"`
	StopMethod  string               `json:"stop_method"`
	ForcedStop  bool                 `json:"forced_stop"`
}

// ManifestSource is the verified input image.
type ManifestSource struct {
	Location string `json:"location"`
	Digest   string `json:"digest"`
}

func writeManifest(ctx context.Context, s *State, dir string, names []string) error {
	r := s.Recipe
	m := Manifest{
		Name:        r.Name,
		RecipePath:  r.Path,
		RecipeHash:  r.Hash,
		Variables:   publicVariables(s),
		Source:      ManifestSource{Location: s.Emitter.Redact(s.Source.Location), Digest: s.Source.Digest},
		BakeVersion: s.Options.Version,
		GoVersion:   runtime.Version(),
		QEMUVersion: s.QEMUVersion,
		Accelerator: s.Accelerator,
		AccelNote:   s.AcceleratorReason,
		Created:     time.Now().UTC(),
		Steps:       append([]Timing(nil), s.Timings...),
		HostKey:     s.HostKey,
		HostKeySHA:  s.HostKeySHA,
		StopMethod:  s.StopMethod,
		ForcedStop:  s.ForcedStop,
	}
	m.QEMUImg, _ = disk.Version(ctx)
	for _, a := range s.Artifacts {
		a.Path = filepath.Base(a.Path)
		m.Artifacts = append(m.Artifacts, a)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, ManifestFile)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("failed to write manifest: %w", err)
	}
	return nil
}

// publicVariables returns the recipe's variables with sensitive values
// masked.
func publicVariables(s *State) map[string]string {
	out := make(map[string]string, len(s.Recipe.Vars))
	keys := make([]string, 0, len(s.Recipe.Vars))
	for k := range s.Recipe.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := s.Recipe.Vars[k]
		if s.Recipe.Variables[k].Sensitive {
			v = event.Mask
		}
		out[k] = s.Emitter.Redact(v)
	}
	return out
}
