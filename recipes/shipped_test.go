package recipes

import (
	"os"
	"path/filepath"
	"strings"
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
	// The tiny installer's ISO is a fixture built outside the repository,
	// so its recipe declares the variable without a default.
	iso := filepath.Join(t.TempDir(), "tiny-installer.iso")
	if err := os.WriteFile(iso, []byte("iso"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]map[string]string{"tiny-installer.toml": {"iso": iso}}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			if _, err := Load(path, LoadOptions{Vars: vars[path]}); err != nil {
				t.Fatalf("Load(%q) failed:\n%v", path, err)
			}
		})
	}
}

func TestDebianCloudRecipe(t *testing.T) {
	r, err := Load("debian-12-cloud.toml", LoadOptions{Vars: map[string]string{"release": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "debian-12-cloud" {
		t.Errorf("Name = %q, want %q", r.Name, "debian-12-cloud")
	}
	wantImage := "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
	if r.Source.DiskImage != wantImage {
		t.Errorf("Source.DiskImage = %q, want %q", r.Source.DiskImage, wantImage)
	}
	wantSums := "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
	if r.Source.Checksum != wantSums {
		t.Errorf("Source.Checksum = %q, want %q", r.Source.Checksum, wantSums)
	}
	if r.VM.CPUs != 2 {
		t.Errorf("VM.CPUs = %d, want 2", r.VM.CPUs)
	}
	if r.VM.Memory != 2<<30 {
		t.Errorf("VM.Memory = %s, want 2GiB", r.VM.Memory)
	}
	if r.VM.DiskSize != 4<<30 {
		t.Errorf("VM.DiskSize = %s, want 4GiB", r.VM.DiskSize)
	}
	if r.SSH.Username != "root" {
		t.Errorf("SSH.Username = %q, want root", r.SSH.Username)
	}
	if len(r.Output.Formats) != 2 || r.Output.Formats[0] != "qcow2" || r.Output.Formats[1] != "raw" {
		t.Errorf("Output.Formats = %q, want [qcow2 raw]", r.Output.Formats)
	}

	data := r.TemplateData()
	data.SSHPublicKey = "ssh-ed25519 AAAAC3Nza bake"
	userData, err := Render(r.CloudInit.UserData, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#cloud-config\n", "disable_root: false\n", "ssh_authorized_keys:\n  - ssh-ed25519 AAAAC3Nza bake\n"} {
		if !strings.Contains(userData, want) {
			t.Errorf("user_data lacks %q:\n%s", want, userData)
		}
	}
	metaData, err := Render(r.CloudInit.MetaData, data)
	if err != nil {
		t.Fatal(err)
	}
	if want := "instance-id: debian-12-cloud\nlocal-hostname: debian-12-cloud\n"; metaData != want {
		t.Errorf("meta_data = %q, want %q", metaData, want)
	}

	if len(r.Provision) != 2 {
		t.Fatalf("len(Provision) = %d, want 2", len(r.Provision))
	}
	var script []string
	for _, line := range r.Provision[0].Shell {
		out, err := Render(line, data)
		if err != nil {
			t.Fatal(err)
		}
		script = append(script, out)
	}
	joined := strings.Join(script, "\n")
	for _, want := range []string{"apt-get install -y tree", "'debian-12-cloud' '7' > /etc/bake-release", "useradd"} {
		if !strings.Contains(joined, want) {
			t.Errorf("shell provisioner lacks %q:\n%s", want, joined)
		}
	}
	motd, err := filepath.Abs(filepath.Join("files", "motd"))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Provision[1]; p.Source != motd || p.Destination != "/etc/motd" {
		t.Errorf("file provisioner = %q -> %q, want %q -> /etc/motd", p.Source, p.Destination, motd)
	}
}
