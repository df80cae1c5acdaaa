package recipes

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestLoadAppliesDefaults(t *testing.T) {
	path := writeRecipe(t, baseRecipe)
	r, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"vm.cpus", r.VM.CPUs, 2},
		{"vm.memory", r.VM.Memory, Size(2 << 30)},
		{"vm.disk_size", r.VM.DiskSize, Size(0)},
		{"vm.disk_interface", r.VM.DiskInterface, "virtio"},
		{"vm.accelerator", r.VM.Accelerator, "auto"},
		{"vm.firmware", r.VM.Firmware, "bios"},
		{"vm.machine", r.VM.Machine, "pc"},
		{"vm.net_device", r.VM.NetDevice, "virtio-net-pci"},
		{"communicator", r.Communicator, "ssh"},
		{"ssh.username", r.SSH.Username, "root"},
		{"ssh.port", r.SSH.Port, 22},
		{"ssh.timeout", r.SSH.Timeout.D(), 30 * time.Minute},
		{"shutdown.command", r.Shutdown.Command, "poweroff"},
		{"shutdown.timeout", r.Shutdown.Timeout.D(), 5 * time.Minute},
		{"http.port_min", r.HTTP.PortMin, 8000},
		{"http.port_max", r.HTTP.PortMax, 9000},
		{"cloud_init.label", r.CloudInit.Label, "cidata"},
		{"cloud_init enabled", r.CloudInit.Enabled(), false},
		{"boot.key_interval", r.Boot.KeyInterval.D(), time.Duration(0)},
		{"boot.key_hold", r.Boot.KeyHold.D(), time.Duration(0)},
		{"output.directory", r.Output.Directory, filepath.Join(cwd, "output", "test")},
		{"output.compression", r.Output.Compression, "zstd"},
		{"output.filename", r.Output.Filename, "test"},
		{"output.formats", len(r.Output.Formats), 1},
		{"output.formats[0]", r.Output.Formats[0], "qcow2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadEFIMachine(t *testing.T) {
	r, err := Load(writeRecipe(t, baseRecipe+"[vm]\nfirmware = \"efi\"\n"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.VM.Machine != "q35" {
		t.Errorf("VM.Machine = %q with efi firmware, want %q", r.VM.Machine, "q35")
	}
}

func TestLoadResolvesPaths(t *testing.T) {
	dir := t.TempDir()
	recipeDir := filepath.Join(dir, "recipes")
	for _, p := range []string{"recipes/http", "recipes/files"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"recipes/base.qcow2", "recipes/SHA256SUMS", "recipes/vmlinuz", "recipes/files/motd",
		"recipes/files/run.sh", "recipes/files/vendor-data", "recipes/id_ed25519"} {
		writeFile(t, filepath.Join(dir, p), "content")
	}
	path := filepath.Join(recipeDir, "paths.toml")
	writeFile(t, path, `name = "paths"

[source]
disk_image = "base.qcow2"
checksum = "file:SHA256SUMS"

[vm]
kernel = "vmlinuz"

[http]
directory = "http"

[cloud_init.files]
vendor-data = "files/vendor-data"

[ssh]
private_key_file = "id_ed25519"

[[provision]]
script = "files/run.sh"

[[provision]]
source = "files/motd"
destination = "/etc/motd"

[output]
directory = "build/out"
`)
	r, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"Path", r.Path, path},
		{"Dir", r.Dir, recipeDir},
		{"source.disk_image", r.Source.DiskImage, filepath.Join(recipeDir, "base.qcow2")},
		{"source.checksum", r.Source.Checksum, "file:" + filepath.Join(recipeDir, "SHA256SUMS")},
		{"vm.kernel", r.VM.Kernel, filepath.Join(recipeDir, "vmlinuz")},
		{"http.directory", r.HTTP.Directory, filepath.Join(recipeDir, "http")},
		{"cloud_init.files", r.CloudInit.Files["vendor-data"], filepath.Join(recipeDir, "files", "vendor-data")},
		{"ssh.private_key_file", r.SSH.PrivateKeyFile, filepath.Join(recipeDir, "id_ed25519")},
		{"provision[0].script", r.Provision[0].Script, filepath.Join(recipeDir, "files", "run.sh")},
		{"provision[1].source", r.Provision[1].Source, filepath.Join(recipeDir, "files", "motd")},
		{"provision[1].destination", r.Provision[1].Destination, "/etc/motd"},
		{"output.directory", r.Output.Directory, filepath.Join(cwd, "build", "out")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !r.CloudInit.Enabled() {
		t.Errorf("CloudInit.Enabled() = false with files set, want true")
	}
	if !r.Provision[1].IsFile() || r.Provision[0].IsFile() {
		t.Errorf("IsFile() = %v, %v, want false, true", r.Provision[0].IsFile(), r.Provision[1].IsFile())
	}
}

func TestLoadHash(t *testing.T) {
	path := writeRecipe(t, baseRecipe)
	r, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(baseRecipe))
	if want := hex.EncodeToString(sum[:]); r.Hash != want {
		t.Errorf("Hash = %s, want %s", r.Hash, want)
	}
}

func TestLoadURLSources(t *testing.T) {
	path := writeRecipe(t, `name = "iso"

[source]
iso = ["https://a.example/x.iso", "https://b.example/x.iso"]
checksum = "SHA256:`+"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"+`"

[vm]
disk_size = "10GiB"
`)
	_, err := Load(path, LoadOptions{})
	if err == nil {
		t.Fatal("Load accepted an upper-case algorithm name, want an error")
	}

	path = writeRecipe(t, `name = "iso"

[source]
iso = ["https://a.example/x.iso", "https://b.example/x.iso"]
checksum = "sha256:`+"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"+`"

[vm]
disk_size = "10GiB"
`)
	r, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://a.example/x.iso", "https://b.example/x.iso"}; !slices.Equal(r.Source.ISO, want) {
		t.Errorf("Source.ISO = %q, want %q", r.Source.ISO, want)
	}
}

func TestLoadISOAsString(t *testing.T) {
	path := writeRecipe(t, "name = \"iso\"\n[source]\niso = \"base.qcow2\"\n[vm]\ndisk_size = \"1GiB\"\n")
	r, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(filepath.Dir(path), "base.qcow2")}; !slices.Equal(r.Source.ISO, want) {
		t.Errorf("Source.ISO = %q, want %q", r.Source.ISO, want)
	}
}
