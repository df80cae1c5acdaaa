package disk

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

var seedFiles = map[string][]byte{
	"user-data":            []byte("#cloud-config\npassword: secret\n"),
	"meta-data":            []byte("instance-id: bake-1\nlocal-hostname: bake\n"),
	"network-config":       []byte("version: 2\n"),
	"scripts/setup.sh":     []byte("#!/bin/sh\necho hello\n"),
	"a-rather-long-name.x": bytes.Repeat([]byte("0123456789"), 500),
}

func TestWriteSeedISOVolumeLabel(t *testing.T) {
	tests := []struct {
		name  string
		label string
	}{
		{name: "lower case", label: "cidata"},
		{name: "upper case", label: "CIDATA"},
		{name: "mixed case", label: "CiData-2"},
		{name: "max length", label: strings.Repeat("x", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imgPath := filepath.Join(t.TempDir(), "seed.iso")
			if err := WriteSeedISO(imgPath, tt.label, seedFiles); err != nil {
				t.Fatalf("WriteSeedISO = %v", err)
			}
			data, err := os.ReadFile(imgPath)
			if err != nil {
				t.Fatal(err)
			}
			if len(data)%isoBlockSize != 0 {
				t.Errorf("image size %d is not a multiple of %d", len(data), isoBlockSize)
			}
			// The primary volume descriptor starts at block 16; its volume
			// identifier is 32 bytes at offset 40, padded with spaces.
			const pvd = 16 * isoBlockSize
			if got := string(data[pvd+1 : pvd+6]); got != "CD001" {
				t.Fatalf("signature at block 16 = %q, want CD001", got)
			}
			field := string(data[pvd+40 : pvd+72])
			if want := padASCII(tt.label, 32); field != string(want) {
				t.Errorf("volume identifier field = %q, want %q", field, want)
			}
			if got := strings.TrimRight(field, " "); got != tt.label {
				t.Errorf("volume label = %q, want %q", got, tt.label)
			}
		})
	}
}

func TestWriteSeedISOReadBack(t *testing.T) {
	imgPath := filepath.Join(t.TempDir(), "seed.iso")
	if err := WriteSeedISO(imgPath, "cidata", seedFiles); err != nil {
		t.Fatalf("WriteSeedISO = %v", err)
	}

	f, err := os.Open(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stat, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	iso, err := iso9660.Read(file.New(f, true), stat.Size(), 0, isoBlockSize)
	if err != nil {
		t.Fatalf("iso9660.Read = %v", err)
	}
	if got := strings.TrimRight(iso.Label(), " "); got != "cidata" {
		t.Errorf("go-diskfs label = %q, want cidata", got)
	}
	assertFiles(t, iso, seedFiles)
}

func TestWriteSeedISOExternalReaders(t *testing.T) {
	imgPath := filepath.Join(t.TempDir(), "seed.iso")
	if err := WriteSeedISO(imgPath, "cidata", seedFiles); err != nil {
		t.Fatalf("WriteSeedISO = %v", err)
	}

	t.Run("blkid", func(t *testing.T) {
		if _, err := exec.LookPath("blkid"); err != nil {
			t.Skip("blkid not installed (Debian package util-linux)")
		}
		out, err := exec.Command("blkid", "-p", "-o", "export", imgPath).Output()
		if err != nil {
			t.Fatalf("blkid %s: %v", imgPath, err)
		}
		for _, want := range []string{"LABEL=cidata\n", "TYPE=iso9660\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("blkid output %q does not contain %q", out, want)
			}
		}
	})

	t.Run("xorriso", func(t *testing.T) {
		if _, err := exec.LookPath("xorriso"); err != nil {
			t.Skip("xorriso not installed (Debian package xorriso)")
		}
		// xorriso reads the Rock Ridge names, which Linux uses when it mounts
		// the ISO and which cloud-init then reads.
		out, err := exec.Command("xorriso", "-indev", imgPath, "-find", "/", "-type", "f").Output()
		if err != nil {
			t.Fatalf("xorriso -find %s: %v", imgPath, err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got = append(got, strings.TrimPrefix(strings.Trim(line, "'"), "/"))
		}
		sort.Strings(got)
		want := sortedKeys(seedFiles)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("xorriso file names = %v, want %v", got, want)
		}
	})
}

func TestWriteSeedISOInvalid(t *testing.T) {
	tests := []struct {
		name    string
		label   string
		files   map[string][]byte
		wantErr string
	}{
		{name: "empty label", label: "", files: seedFiles, wantErr: "invalid ISO volume label"},
		{name: "long label", label: strings.Repeat("x", 33), files: seedFiles, wantErr: "invalid ISO volume label"},
		{name: "absolute name", label: "cidata", files: map[string][]byte{"/user-data": nil}, wantErr: `invalid seed file name "/user-data"`},
		{name: "parent name", label: "cidata", files: map[string][]byte{"../user-data": nil}, wantErr: `invalid seed file name "../user-data"`},
		{name: "unclean name", label: "cidata", files: map[string][]byte{"a//b": nil}, wantErr: `invalid seed file name "a//b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := WriteSeedISO(filepath.Join(dir, "seed.iso"), tt.label, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("WriteSeedISO = %v, want an error containing %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files left after a rejected call: %v", entries)
			}
		})
	}
}

func TestWriteSeedISOReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	imgPath := filepath.Join(dir, "seed.iso")
	if err := os.WriteFile(imgPath, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSeedISO(imgPath, "cidata", seedFiles); err != nil {
		t.Fatalf("WriteSeedISO = %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "seed.iso" {
		t.Errorf("directory entries = %v, want only seed.iso", entries)
	}
	info, err := os.Stat(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() <= 3 {
		t.Errorf("seed.iso size = %d, want the new image", info.Size())
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("seed.iso mode = %v, want 0644", info.Mode().Perm())
	}
}

func TestWriteFloppyReadBack(t *testing.T) {
	imgPath := filepath.Join(t.TempDir(), "seed.img")
	if err := WriteFloppy(imgPath, "cidata", seedFiles); err != nil {
		t.Fatalf("WriteFloppy = %v", err)
	}
	f, err := os.Open(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stat, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if stat.Size() != FloppySize {
		t.Errorf("floppy size = %d, want %d", stat.Size(), FloppySize)
	}

	fat, err := fat12.Read(file.New(f, true), FloppySize, 0, floppySectorSize)
	if err != nil {
		t.Fatalf("fat12.Read = %v", err)
	}
	if got := strings.TrimRight(fat.Label(), " "); got != "cidata" {
		t.Errorf("floppy label = %q, want cidata", got)
	}
	assertFiles(t, fat, seedFiles)

	if _, err := exec.LookPath("blkid"); err == nil {
		out, err := exec.Command("blkid", "-p", "-o", "export", imgPath).Output()
		if err != nil {
			t.Fatalf("blkid %s: %v", imgPath, err)
		}
		for _, want := range []string{"LABEL=cidata\n", "TYPE=vfat\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("blkid output %q does not contain %q", out, want)
			}
		}
	}
}

func TestWriteFloppyInvalid(t *testing.T) {
	tests := []struct {
		name    string
		label   string
		files   map[string][]byte
		wantErr string
	}{
		{name: "long label", label: "twelve-chars", files: seedFiles, wantErr: "invalid floppy volume label"},
		{name: "too large", label: "cidata", files: map[string][]byte{"big": make([]byte, 2*FloppySize)}, wantErr: `"big"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := WriteFloppy(filepath.Join(dir, "seed.img"), tt.label, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("WriteFloppy = %v, want an error containing %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files left after a failed call: %v", entries)
			}
		})
	}
}

// assertFiles checks that fsys contains exactly want, by name and content.
func assertFiles(t *testing.T, fsys filesystem.FileSystem, want map[string][]byte) {
	t.Helper()
	var got []string
	var walk func(dir string)
	walk = func(dir string) {
		entries, err := fsys.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir(%q) = %v", dir, err)
		}
		for _, e := range entries {
			name := path.Join(dir, e.Name())
			if e.IsDir() {
				walk(name)
				continue
			}
			got = append(got, name)
		}
	}
	walk(".")
	sort.Strings(got)
	if names := sortedKeys(want); strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("file names = %v, want %v", got, names)
	}

	for name, content := range want {
		f, err := fsys.OpenFile(name, os.O_RDONLY)
		if err != nil {
			t.Errorf("open %q: %v", name, err)
			continue
		}
		data, err := io.ReadAll(f)
		_ = f.Close()
		if err != nil {
			t.Errorf("read %q: %v", name, err)
			continue
		}
		if !bytes.Equal(data, content) {
			t.Errorf("content of %q = %q, want %q", name, truncate(data), truncate(content))
		}
	}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
