package recipes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// baseRecipe is the smallest valid recipe. Cases append to it, and TOML
// allows the tables they add to follow.
const baseRecipe = `name = "test"

[source]
disk_image = "base.qcow2"
`

// writeRecipe writes text as recipe.toml beside an empty base.qcow2 in a
// new directory and returns the recipe's path.
func writeRecipe(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "base.qcow2"), "QFI\xfb")
	path := filepath.Join(dir, "recipe.toml")
	writeFile(t, path, text)
	return path
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadError loads path and returns the error text with the directory of
// path removed, so messages read "recipe.toml:3:1: ...".
func loadError(t *testing.T, path string, opts LoadOptions) string {
	t.Helper()
	r, err := Load(path, opts)
	if err == nil {
		t.Fatalf("Load succeeded with %+v, want an error", r)
	}
	if r != nil {
		t.Errorf("Load returned a recipe along with an error")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Errorf("error is %T, want ErrorList", err)
	}
	return strings.ReplaceAll(err.Error(), filepath.Dir(path)+string(filepath.Separator), "")
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		recipe string
		want   string
	}{
		{
			name:   "syntax error",
			recipe: "name = \"test\n",
			want:   `recipe.toml:1:13: invalid TOML: basic strings cannot have new lines`,
		},
		{
			name:   "duplicate key",
			recipe: "name = \"test\"\nname = \"again\"\n",
			want:   `recipe.toml:2:1: name: invalid TOML: key name is already defined`,
		},
		{
			name:   "invalid UTF-8",
			recipe: "name = \"test\"\ndescription = \"caf\xe9\"\n",
			want:   `recipe.toml:2:19: invalid UTF-8: save the file as UTF-8`,
		},
		{
			name:   "byte order mark dropped, columns as an editor shows",
			recipe: "\ufeffcolour = 1\n" + baseRecipe,
			want: `recipe.toml:1:1: colour: unknown key, expected one of: boot, cloud_init, communicator, ` +
				`description, http, matrix, name, output, provision, shutdown, source, ssh, variables, vm`,
		},
		{
			name:   "byte order mark inside the file",
			recipe: "name = \"test\"\n\ufeffcolour = 1\n",
			want:   `recipe.toml:2:1: byte order mark (U+FEFF) inside the file: delete it`,
		},
		{
			name:   "path from a missing variable is not also reported missing",
			recipe: "name = \"test\"\n[variables.img]\n[source]\ndisk_image = \"{{ .Vars.img }}\"\n",
			want:   `recipe.toml:2:12: variables.img: no default and no value: set it with --var img=VALUE, a variable file or BAKE_VAR_img`,
		},
		{
			name:   "UTF-16",
			recipe: "\xff\xfen\x00a\x00",
			want:   `recipe.toml:1:1: UTF-16 text: save the file as UTF-8`,
		},
		{
			name:   "NUL byte",
			recipe: "name = \"te\x00st\"\n",
			want:   `recipe.toml:1:11: NUL byte: a TOML file must be text`,
		},
		{
			name:   "unknown top-level key",
			recipe: "colour = \"red\"\n" + baseRecipe,
			want: `recipe.toml:1:1: colour: unknown key, expected one of: boot, cloud_init, communicator, ` +
				`description, http, matrix, name, output, provision, shutdown, source, ssh, variables, vm`,
		},
		{
			name:   "unknown key with suggestion",
			recipe: baseRecipe + "[vm]\ncpu = 4\n",
			want:   `recipe.toml:6:1: vm.cpu: unknown key, did you mean "cpus"?`,
		},
		{
			name:   "unknown key in dotted form",
			recipe: "ssh.user = \"root\"\n" + baseRecipe,
			want:   `recipe.toml:1:5: ssh.user: unknown key, did you mean "username"?`,
		},
		{
			name:   "unknown table",
			recipe: baseRecipe + "[network]\nmode = \"user\"\n",
			want: `recipe.toml:5:2: network: unknown key, expected one of: boot, cloud_init, communicator, ` +
				`description, http, matrix, name, output, provision, shutdown, source, ssh, variables, vm`,
		},
		{
			name:   "unknown key in second provisioner",
			recipe: baseRecipe + "[[provision]]\nshell = [\"true\"]\n[[provision]]\nshell = [\"true\"]\nshel = 1\n",
			want:   `recipe.toml:9:1: provision[1].shel: unknown key, did you mean "shell"?`,
		},
		{
			name:   "string for integer",
			recipe: baseRecipe + "[vm]\ncpus = \"two\"\n",
			want:   `recipe.toml:6:1: vm.cpus: expected an integer, got a string ("two")`,
		},
		{
			name:   "integer for string",
			recipe: "name = 42\n[source]\ndisk_image = \"base.qcow2\"\n",
			want:   `recipe.toml:1:1: name: expected a string, got an integer (42)`,
		},
		{
			name:   "integer for array",
			recipe: baseRecipe + "[[provision]]\nshell = 5\n",
			want:   `recipe.toml:6:1: provision[0].shell: expected an array of strings, got an integer (5)`,
		},
		{
			name:   "wrong type inside array",
			recipe: baseRecipe + "[output]\nformats = [\"qcow2\", 7]\n",
			want:   `recipe.toml:6:21: output.formats[1]: expected a string, got an integer (7)`,
		},
		{
			name:   "table for string",
			recipe: baseRecipe + "[ssh.username]\nfirst = \"root\"\n",
			want:   `recipe.toml:5:6: ssh.username: expected a string, got a table`,
		},
		{
			name:   "boolean for size",
			recipe: baseRecipe + "[vm]\nmemory = true\n",
			want:   `recipe.toml:6:1: vm.memory: expected a string, got a boolean (true)`,
		},
		{
			name:   "negative size",
			recipe: baseRecipe + "[vm]\ndisk_size = \"-4GiB\"\n",
			want:   `recipe.toml:6:1: vm.disk_size: invalid size "-4GiB": must not be negative`,
		},
		{
			name:   "absurd size",
			recipe: baseRecipe + "[vm]\ndisk_size = \"100000TiB\"\n",
			want:   `recipe.toml:6:1: vm.disk_size: invalid size "100000TiB": larger than the 64TiB maximum`,
		},
		{
			name:   "size with exponent",
			recipe: baseRecipe + "[vm]\ndisk_size = \"1e30GiB\"\n",
			want: `recipe.toml:6:1: vm.disk_size: invalid size "1e30GiB": ` +
				`use a number with a unit such as "512MiB" or "10GiB"`,
		},
		{
			name:   "size with decimal unit",
			recipe: baseRecipe + "[vm]\ndisk_size = \"10GB\"\n",
			want: `recipe.toml:6:1: vm.disk_size: invalid size "10GB": ` +
				`unknown unit "GB", use B, KiB, MiB, GiB or TiB`,
		},
		{
			name:   "zero size",
			recipe: baseRecipe + "[vm]\nmemory = 0\n",
			want:   `recipe.toml:6:1: vm.memory: invalid size "0": must be greater than zero: use a size such as "512MiB", or remove the key for its default`,
		},
		{
			name:   "disk below minimum",
			recipe: baseRecipe + "[vm]\ndisk_size = \"512KiB\"\n",
			want:   `recipe.toml:6:1: vm.disk_size: invalid value 512KiB: must be at least 1MiB`,
		},
		{
			name:   "memory below minimum",
			recipe: baseRecipe + "[vm]\nmemory = \"32MiB\"\n",
			want:   `recipe.toml:6:1: vm.memory: invalid value 32MiB: must be between 64MiB and 4TiB`,
		},
		{
			name:   "memory above maximum",
			recipe: baseRecipe + "[vm]\nmemory = \"5TiB\"\n",
			want:   `recipe.toml:6:1: vm.memory: invalid value 5TiB: must be between 64MiB and 4TiB`,
		},
		{
			name:   "too many cpus",
			recipe: baseRecipe + "[vm]\ncpus = 300\n",
			want:   `recipe.toml:6:1: vm.cpus: invalid value 300: must be between 1 and 256`,
		},
		{
			name:   "negative cpus",
			recipe: baseRecipe + "[vm]\ncpus = -1\n",
			want:   `recipe.toml:6:1: vm.cpus: invalid value -1: must be between 1 and 256`,
		},
		{
			name:   "integer overflow",
			recipe: baseRecipe + "[ssh]\nport = 9223372036854775807\n",
			want:   `recipe.toml:6:1: ssh.port: invalid port 9223372036854775807: must be between 1 and 65535`,
		},
		{
			name:   "negative duration",
			recipe: baseRecipe + "[ssh]\ntimeout = \"-5s\"\n",
			want:   `recipe.toml:6:1: ssh.timeout: invalid duration "-5s": must not be negative`,
		},
		{
			name:   "duration without unit",
			recipe: baseRecipe + "[shutdown]\ntimeout = \"5 minutes\"\n",
			want: `recipe.toml:6:1: shutdown.timeout: invalid duration "5 minutes": ` +
				`use a number with a unit such as "90s" or "30m"`,
		},
		{
			name:   "missing name",
			recipe: "[source]\ndisk_image = \"base.qcow2\"\n",
			want:   `recipe.toml: name: missing: set a name such as "debian-12"`,
		},
		{
			name:   "unsafe name",
			recipe: "name = \"../etc\"\n[source]\ndisk_image = \"base.qcow2\"\n",
			want: `recipe.toml:1:1: name: invalid name "../etc": ` +
				`use letters, digits, '.', '_' and '-', starting with a letter or digit`,
		},
		{
			name:   "missing source",
			recipe: "name = \"test\"\n",
			want:   `recipe.toml: source: missing source: set source.disk_image or source.iso`,
		},
		{
			name:   "both sources",
			recipe: baseRecipe + "iso = \"base.qcow2\"\n",
			want:   `recipe.toml:3:2: source: both disk_image and iso are set: keep one`,
		},
		{
			name:   "local source not found",
			recipe: "name = \"test\"\n[source]\ndisk_image = \"missing.qcow2\"\n",
			want:   `recipe.toml:3:1: source.disk_image: file not found: DIR/missing.qcow2`,
		},
		{
			name:   "url without checksum",
			recipe: "name = \"test\"\n[source]\ndisk_image = \"https://example.com/base.qcow2\"\n",
			want: `recipe.toml:2:2: source.checksum: missing: a download needs a checksum such as ` +
				`"sha256:HEX" or "file:URL", or "none" to skip verification`,
		},
		{
			name:   "checksum without algorithm",
			recipe: baseRecipe + "checksum = \"abc123\"\n",
			want: `recipe.toml:5:1: source.checksum: invalid checksum "abc123": ` +
				`use "sha256:HEX", "sha512:HEX", "file:URL" or "none"`,
		},
		{
			name:   "checksum with unsupported algorithm",
			recipe: baseRecipe + "checksum = \"md5:d41d8cd98f00b204e9800998ecf8427e\"\n",
			want: `recipe.toml:5:1: source.checksum: invalid checksum "md5:d41d8cd98f00b204e9800998ecf8427e": ` +
				`unsupported algorithm "md5", use sha256, sha512 or file`,
		},
		{
			name:   "short sha256",
			recipe: baseRecipe + "checksum = \"sha256:abc\"\n",
			want:   `recipe.toml:5:1: source.checksum: invalid sha256 checksum: expected 64 hexadecimal digits, got 3 characters`,
		},
		{
			name:   "sha512 with non-hex digits",
			recipe: baseRecipe + "checksum = \"sha512:" + strings.Repeat("z", 128) + "\"\n",
			want:   `recipe.toml:5:1: source.checksum: invalid sha512 checksum: expected 128 hexadecimal digits, got 128 characters`,
		},
		{
			name:   "empty checksum file",
			recipe: baseRecipe + "checksum = \"file:\"\n",
			want:   `recipe.toml:5:1: source.checksum: invalid checksum "file:": name the checksum file after "file:"`,
		},
		{
			name:   "iso without disk size",
			recipe: "name = \"test\"\n[source]\niso = \"https://example.com/x.iso\"\nchecksum = \"none\"\n",
			want:   `recipe.toml: vm.disk_size: missing: an installer needs a blank disk, set a size such as "10GiB"`,
		},
		{
			name:   "unknown accelerator",
			recipe: baseRecipe + "[vm]\naccelerator = \"hvf\"\n",
			want:   `recipe.toml:6:1: vm.accelerator: invalid value "hvf": use one of "auto", "kvm", "tcg"`,
		},
		{
			name:   "unknown firmware",
			recipe: baseRecipe + "[vm]\nfirmware = \"uefi\"\n",
			want:   `recipe.toml:6:1: vm.firmware: invalid value "uefi": use one of "bios", "efi"`,
		},
		{
			name:   "unknown disk interface",
			recipe: baseRecipe + "[vm]\ndisk_interface = \"nvme\"\n",
			want:   `recipe.toml:6:1: vm.disk_interface: invalid value "nvme": use one of "virtio", "ide", "scsi"`,
		},
		{
			name:   "unknown compression",
			recipe: baseRecipe + "[output]\ncompression = \"gzip\"\n",
			want:   `recipe.toml:6:1: output.compression: invalid value "gzip": use one of "zstd", "zlib", "none"`,
		},
		{
			name:   "unknown communicator",
			recipe: baseRecipe + "communicator = \"winrm\"\n",
			want:   `recipe.toml:5:1: source.communicator: unknown key, expected one of: checksum, disk_image, iso`,
		},
		{
			name:   "unknown communicator at top level",
			recipe: "communicator = \"winrm\"\n" + baseRecipe,
			want:   `recipe.toml:1:1: communicator: invalid value "winrm": use one of "ssh", "none"`,
		},
		{
			name:   "unknown format",
			recipe: baseRecipe + "[output]\nformats = [\"vmdk\"]\n",
			want:   `recipe.toml:6:12: output.formats[0]: invalid format "vmdk": use one of "qcow2", "raw"`,
		},
		{
			name:   "duplicate format",
			recipe: baseRecipe + "[output]\nformats = [\"raw\", \"qcow2\", \"raw\"]\n",
			want:   `recipe.toml:6:28: output.formats[2]: duplicate format "raw": list each format once`,
		},
		{
			name:   "empty formats",
			recipe: baseRecipe + "[output]\nformats = []\n",
			want:   `recipe.toml:6:1: output.formats: empty: list at least one of "qcow2", "raw"`,
		},
		{
			name:   "provisioner without action",
			recipe: baseRecipe + "[[provision]]\nname = \"nothing\"\n",
			want:   `recipe.toml:5:3: provision[0]: missing action: set one of shell, local, script or source`,
		},
		{
			name:   "provisioner with two actions",
			recipe: baseRecipe + "[[provision]]\nshell = [\"true\"]\nscript = \"base.qcow2\"\n",
			want:   `recipe.toml:5:3: provision[0]: more than one action: set only one of shell, local, script or source`,
		},
		{
			name:   "file provisioner without destination",
			recipe: baseRecipe + "[[provision]]\nsource = \"base.qcow2\"\n",
			want: `recipe.toml:6:1: provision[0].source: missing destination: ` +
				`a file provisioner needs a guest path in destination`,
		},
		{
			name:   "destination without source",
			recipe: baseRecipe + "[[provision]]\nshell = [\"true\"]\ndestination = \"/tmp\"\n",
			want: `recipe.toml:7:1: provision[0].destination: set without source: ` +
				`only a file provisioner uploads to a destination`,
		},
		{
			name:   "script not found",
			recipe: "provision = [{ shell = [\"true\"] }, { script = \"missing.sh\" }]\n" + baseRecipe,
			want:   `recipe.toml:1:38: provision[1].script: file not found: DIR/missing.sh`,
		},
		{
			name:   "communicator none with provisioners",
			recipe: "communicator = \"none\"\n" + baseRecipe + "[[provision]]\nshell = [\"true\"]\n",
			want:   `recipe.toml:6:3: provision: provisioners need a communicator: remove communicator = "none"`,
		},
		{
			name:   "invalid environment name",
			recipe: baseRecipe + "[[provision]]\nshell = [\"true\"]\nenvironment = { \"A-B\" = \"1\" }\n",
			want: `recipe.toml:7:17: provision[0].environment.A-B: ` +
				`invalid environment variable name: use letters, digits and underscores`,
		},
		{
			name:   "port range reversed",
			recipe: baseRecipe + "[http]\nport_min = 9000\nport_max = 8000\n",
			want:   `recipe.toml:6:1: http.port_min: invalid port range 9000-8000: port_min is greater than port_max`,
		},
		{
			name:   "port out of range",
			recipe: baseRecipe + "[http]\nport_max = 70000\n",
			want:   `recipe.toml:6:1: http.port_max: invalid port 70000: must be between 1 and 65535`,
		},
		{
			name:   "http content escaping directory",
			recipe: baseRecipe + "[http.content]\n\"../x\" = \"y\"\n",
			want:   `recipe.toml:6:1: http.content."../x": invalid name "../x": use a relative path without ".."`,
		},
		{
			name:   "initrd without kernel",
			recipe: baseRecipe + "[vm]\ninitrd = \"base.qcow2\"\n",
			want:   `recipe.toml:6:1: vm.initrd: set without vm.kernel: an initrd is only used for direct kernel boot`,
		},
		{
			name:   "http directory is a file",
			recipe: baseRecipe + "[http]\ndirectory = \"base.qcow2\"\n",
			want:   `recipe.toml:6:1: http.directory: not a directory: DIR/base.qcow2`,
		},
		{
			name:   "volume label too long",
			recipe: baseRecipe + "[cloud_init]\nlabel = \"" + strings.Repeat("x", 33) + "\"\n",
			want: `recipe.toml:6:1: cloud_init.label: invalid label "` + strings.Repeat("x", 33) +
				`": longer than 32 characters`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRecipe(t, tt.recipe)
			want := strings.ReplaceAll(tt.want, "DIR/", filepath.Dir(path)+string(filepath.Separator))
			want = strings.ReplaceAll(want, filepath.Dir(path)+string(filepath.Separator), "")
			if got := loadError(t, path, LoadOptions{}); got != want {
				t.Errorf("error mismatch\ngot:  %s\nwant: %s", got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.toml")
	_, err := Load(path, LoadOptions{})
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	if want := path + ": recipe file not found: check the path"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false, want true")
	}
}

func TestLoadReportsAllErrors(t *testing.T) {
	path := writeRecipe(t, `name = "bad name"
colour = "red"

[source]
disk_image = "https://example.com/base.qcow2"
checksum = "sha256:abc"

[vm]
cpus = "two"
memory = "-1GiB"
firmware = "uefi"

[[provision]]
source = "base.qcow2"
`)
	want := strings.Join([]string{
		`recipe.toml:1:1: name: invalid name "bad name": use letters, digits, '.', '_' and '-', starting with a letter or digit`,
		`recipe.toml:2:1: colour: unknown key, expected one of: boot, cloud_init, communicator, ` +
			`description, http, matrix, name, output, provision, shutdown, source, ssh, variables, vm`,
		`recipe.toml:6:1: source.checksum: invalid sha256 checksum: expected 64 hexadecimal digits, got 3 characters`,
		`recipe.toml:9:1: vm.cpus: expected an integer, got a string ("two")`,
		`recipe.toml:10:1: vm.memory: invalid size "-1GiB": must not be negative`,
		`recipe.toml:11:1: vm.firmware: invalid value "uefi": use one of "bios", "efi"`,
		`recipe.toml:14:1: provision[0].source: missing destination: a file provisioner needs a guest path in destination`,
	}, "\n")
	if got := loadError(t, path, LoadOptions{}); got != want {
		t.Errorf("error mismatch\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoadSourceLocations(t *testing.T) {
	tests := []struct {
		name   string
		source string
		want   string
	}{
		{
			name:   "unsupported scheme",
			source: "disk_image = \"ftp://example.com/base.qcow2\"\nchecksum = \"none\"\n",
			want: `recipe.toml:3:1: source.disk_image: unsupported URL scheme "ftp": ` +
				`use an http(s) URL, a file:// URL or a local path`,
		},
		{
			name:   "file URL not found",
			source: "disk_image = \"file:///nonexistent/base.qcow2\"\n",
			want:   `recipe.toml:3:1: source.disk_image: file not found: /nonexistent/base.qcow2`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRecipe(t, "name = \"test\"\n[source]\n"+tt.source)
			if got := loadError(t, path, LoadOptions{}); got != tt.want {
				t.Errorf("error mismatch\ngot:  %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestLoadLocalSourceChecksum(t *testing.T) {
	tests := []struct {
		name     string
		checksum string
		want     string
	}{
		{name: "left out", checksum: "", want: "none"},
		{name: "given", checksum: "sha256:" + strings.Repeat("a", 64), want: "sha256:" + strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := baseRecipe
			if tt.checksum != "" {
				text += "checksum = \"" + tt.checksum + "\"\n"
			}
			r, err := Load(writeRecipe(t, text), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Source.Checksum != tt.want {
				t.Errorf("Source.Checksum = %q, want %q", r.Source.Checksum, tt.want)
			}
		})
	}
}

func TestLoadTooManyKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString(baseRecipe + "[http.content]\n")
	for i := range MaxKeys {
		fmt.Fprintf(&b, "f%d = \"x\"\n", i)
	}
	got := loadError(t, writeRecipe(t, b.String()), LoadOptions{})
	if want := "recipe.toml: 10002 keys, more than the 10000 maximum"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestLoadRejectsUnusableImages(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty.qcow2"), "")
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		image string
		want  string
	}{
		{"empty file", "empty.qcow2", "source.disk_image: empty file: " + filepath.Join(dir, "empty.qcow2") + ": name a disk image or ISO file"},
		{"directory", "adir", "source.disk_image: not a regular file: " + filepath.Join(dir, "adir") + ": name a disk image or ISO file"},
		{"URL without host", "http:///base.qcow2", `source.disk_image: invalid URL "http:///base.qcow2": it has no host`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "recipe.toml")
			writeFile(t, path, "name = \"x\"\n[source]\ndisk_image = \""+tt.image+"\"\nchecksum = \"none\"\n")
			_, err := Load(path, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
