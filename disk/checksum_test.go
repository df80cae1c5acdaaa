package disk

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSHA256File(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{name: "empty", content: "", want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{name: "hello", content: "hello\n", want: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := SHA256File(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("SHA256File = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSHA256FileMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := SHA256File(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("SHA256File(missing) = %v, want an error naming %q", err, missing)
	}
}

func TestWriteChecksums(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"debian.qcow2": "hello\n", "debian.raw": ""}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteChecksums(dir, []string{"debian.qcow2", "debian.raw"}); err != nil {
		t.Fatalf("WriteChecksums = %v", err)
	}

	got, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	want := "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  debian.qcow2\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  debian.raw\n"
	if string(got) != want {
		t.Errorf("SHA256SUMS = %q, want %q", got, want)
	}

	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
		}
	}
}

func TestWriteChecksumsInvalidName(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{name: "directory part", file: "sub/disk.qcow2"},
		{name: "empty", file: ""},
		{name: "newline", file: "a\nb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := WriteChecksums(dir, []string{tt.file})
			if err == nil || !strings.Contains(err.Error(), "invalid file name") {
				t.Errorf("WriteChecksums(%q) = %v, want an invalid file name error", tt.file, err)
			}
			if _, statErr := os.Stat(filepath.Join(dir, "SHA256SUMS")); statErr == nil {
				t.Error("SHA256SUMS written despite the error")
			}
		})
	}
}
