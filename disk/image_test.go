package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const mib = 1 << 20

// requireQemuImg skips the test when the real qemu-img is not installed.
func requireQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian package qemu-utils)")
	}
}

// requireQemuIO skips the test when the real qemu-io is not installed.
func requireQemuIO(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed (Debian package qemu-utils)")
	}
}

// qemuIO runs one qemu-io command on the image at path and fails the test
// when qemu-io exits non-zero, which qemu-io 7.2 also does when a
// "read -P" pattern check fails.
func qemuIO(t *testing.T, path, format, command string) {
	t.Helper()
	out, err := exec.Command("qemu-io", "-f", format, "-c", command, path).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-io -c %q %s: %v\n%s", command, path, err, out)
	}
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// writeBase creates a qcow2 image of size bytes whose first 64 KiB are 0xab.
func writeBase(t *testing.T, dir string, size int64) string {
	t.Helper()
	base := filepath.Join(dir, "base.qcow2")
	if err := CreateBlank(context.Background(), base, size); err != nil {
		t.Fatalf("CreateBlank(%q) = %v", base, err)
	}
	qemuIO(t, base, "qcow2", "write -P 0xab 0 64k")
	return base
}

func TestCreateOverlaySizes(t *testing.T) {
	requireQemuImg(t)
	requireQemuIO(t)

	tests := []struct {
		name        string
		size        int64
		wantVirtual int64
		wantErr     []string
	}{
		{name: "zero keeps base size", size: 0, wantVirtual: 4 * mib},
		{name: "same size", size: 4 * mib, wantVirtual: 4 * mib},
		{name: "larger grows", size: 16 * mib, wantVirtual: 16 * mib},
		{name: "smaller rejected", size: 2 * mib, wantErr: []string{"2097152", "4194304"}},
		{name: "negative rejected", size: -1, wantErr: []string{"-1", "4194304"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			base := writeBase(t, dir, 4*mib)
			baseSum := fileSHA256(t, base)
			overlay := filepath.Join(dir, "work.qcow2")

			err := CreateOverlay(context.Background(), base, overlay, tt.size)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("CreateOverlay(size %d) = nil, want an error", tt.size)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("CreateOverlay error %q does not contain %q", err, want)
					}
				}
				if _, statErr := os.Stat(overlay); statErr == nil {
					t.Errorf("overlay %q exists after a rejected size", overlay)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateOverlay(size %d) = %v", tt.size, err)
			}

			info, err := Info(context.Background(), overlay)
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != "qcow2" {
				t.Errorf("overlay format = %q, want qcow2", info.Format)
			}
			if info.VirtualSize != tt.wantVirtual {
				t.Errorf("overlay virtual size = %d, want %d", info.VirtualSize, tt.wantVirtual)
			}
			if info.BackingFile != base {
				t.Errorf("overlay backing file = %q, want %q", info.BackingFile, base)
			}
			if info.BackingFormat != "qcow2" {
				t.Errorf("overlay backing format = %q, want qcow2", info.BackingFormat)
			}

			qemuIO(t, overlay, "qcow2", "write -P 0xcd 64k 64k")
			// The overlay shows the base's data.
			qemuIO(t, overlay, "qcow2", "read -P 0xab 0 64k")
			if got := fileSHA256(t, base); got != baseSum {
				t.Errorf("base image changed: sha256 %s, was %s", got, baseSum)
			}
		})
	}
}

func TestCreateOverlayRelativeBase(t *testing.T) {
	requireQemuImg(t)
	requireQemuIO(t)
	dir := t.TempDir()
	base := writeBase(t, dir, mib)
	t.Chdir(dir)

	if err := CreateOverlay(context.Background(), "base.qcow2", "work.qcow2", 0); err != nil {
		t.Fatalf("CreateOverlay = %v", err)
	}
	info, err := Info(context.Background(), filepath.Join(dir, "work.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	if info.BackingFile != base {
		t.Errorf("backing file = %q, want absolute %q", info.BackingFile, base)
	}
}

func TestCreateOverlayRawBase(t *testing.T) {
	requireQemuImg(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, make([]byte, mib), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "work.qcow2")
	if err := CreateOverlay(context.Background(), base, overlay, 0); err != nil {
		t.Fatalf("CreateOverlay = %v", err)
	}
	info, err := Info(context.Background(), overlay)
	if err != nil {
		t.Fatal(err)
	}
	if info.BackingFormat != "raw" {
		t.Errorf("backing format = %q, want raw", info.BackingFormat)
	}
}

func TestCreateOverlayMissingBase(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.qcow2")
	err := CreateOverlay(context.Background(), missing, filepath.Join(t.TempDir(), "work.qcow2"), 0)
	if err == nil {
		t.Fatal("CreateOverlay with a missing base = nil, want an error")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name %q", err, missing)
	}
}

func TestCreateBlank(t *testing.T) {
	requireQemuImg(t)
	dst := filepath.Join(t.TempDir(), "blank.qcow2")
	if err := CreateBlank(context.Background(), dst, 10*mib); err != nil {
		t.Fatalf("CreateBlank = %v", err)
	}
	info, err := Info(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" {
		t.Errorf("format = %q, want qcow2", info.Format)
	}
	if info.VirtualSize != 10*mib {
		t.Errorf("virtual size = %d, want %d", info.VirtualSize, 10*mib)
	}
	if info.BackingFile != "" {
		t.Errorf("backing file = %q, want none", info.BackingFile)
	}
	if info.ActualSize <= 0 || info.ActualSize >= 10*mib {
		t.Errorf("actual size = %d, want a sparse file between 0 and %d", info.ActualSize, 10*mib)
	}
	if err := Check(context.Background(), dst); err != nil {
		t.Errorf("Check(blank) = %v", err)
	}
}

func TestResize(t *testing.T) {
	requireQemuImg(t)

	tests := []struct {
		name        string
		size        int64
		wantVirtual int64
		wantErr     []string
	}{
		{name: "grow", size: 8 * mib, wantVirtual: 8 * mib},
		{name: "same size", size: 4 * mib, wantVirtual: 4 * mib},
		{name: "shrink rejected", size: 2 * mib, wantVirtual: 4 * mib, wantErr: []string{"2097152", "4194304", "shrinking"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.qcow2")
			if err := CreateBlank(context.Background(), path, 4*mib); err != nil {
				t.Fatal(err)
			}

			err := Resize(context.Background(), path, tt.size)
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Resize(%d) = %v, want an error containing %q", tt.size, err, want)
				}
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("Resize(%d) = %v", tt.size, err)
			}

			info, err := Info(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			if info.VirtualSize != tt.wantVirtual {
				t.Errorf("virtual size = %d, want %d", info.VirtualSize, tt.wantVirtual)
			}
		})
	}
}

func TestConvertFlattensOverlay(t *testing.T) {
	requireQemuImg(t)
	requireQemuIO(t)
	dir := t.TempDir()
	base := writeBase(t, dir, 4*mib)
	overlay := filepath.Join(dir, "work.qcow2")
	if err := CreateOverlay(context.Background(), base, overlay, 0); err != nil {
		t.Fatal(err)
	}
	qemuIO(t, overlay, "qcow2", "write -P 0xcd 1M 64k")

	out := filepath.Join(dir, "out.qcow2")
	if err := Convert(context.Background(), overlay, out, ConvertOptions{}); err != nil {
		t.Fatalf("Convert = %v", err)
	}
	info, err := Info(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if info.BackingFile != "" {
		t.Errorf("output backing file = %q, want a standalone image", info.BackingFile)
	}
	qemuIO(t, out, "qcow2", "read -P 0xab 0 64k")
	qemuIO(t, out, "qcow2", "read -P 0xcd 1M 64k")
}

func TestCreateBlankInvalidSize(t *testing.T) {
	err := CreateBlank(context.Background(), filepath.Join(t.TempDir(), "blank.qcow2"), 0)
	if err == nil || !strings.Contains(err.Error(), "invalid size 0") {
		t.Errorf("CreateBlank(size 0) = %v, want an invalid size error", err)
	}
}

func TestConvertFormats(t *testing.T) {
	requireQemuImg(t)
	requireQemuIO(t)

	tests := []struct {
		name            string
		opts            ConvertOptions
		wantFormat      string
		wantCompression string // compression-type in qemu-img info, empty for raw
		wantCompressed  bool
	}{
		{name: "zero value is qcow2 zstd", opts: ConvertOptions{}, wantFormat: "qcow2", wantCompression: "zstd", wantCompressed: true},
		{name: "qcow2 zstd", opts: ConvertOptions{Format: "qcow2", Compression: "zstd"}, wantFormat: "qcow2", wantCompression: "zstd", wantCompressed: true},
		{name: "qcow2 zlib", opts: ConvertOptions{Format: "qcow2", Compression: "zlib"}, wantFormat: "qcow2", wantCompression: "zlib", wantCompressed: true},
		{name: "qcow2 uncompressed", opts: ConvertOptions{Format: "qcow2", Compression: "none"}, wantFormat: "qcow2", wantCompression: "zlib"},
		{name: "raw", opts: ConvertOptions{Format: "raw"}, wantFormat: "raw"},
		{name: "raw none", opts: ConvertOptions{Format: "raw", Compression: "none"}, wantFormat: "raw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src.qcow2")
			if err := CreateBlank(context.Background(), src, 8*mib); err != nil {
				t.Fatal(err)
			}
			// A repeating text pattern compresses well, so compressed output is
			// measurably smaller than the 2 MiB that were written.
			qemuIO(t, src, "qcow2", "write -P 0x61 0 2M")
			dst := filepath.Join(dir, "out.img")

			var reports []float64
			opts := tt.opts
			opts.Progress = func(pct float64) { reports = append(reports, pct) }
			if err := Convert(context.Background(), src, dst, opts); err != nil {
				t.Fatalf("Convert = %v", err)
			}

			info, err := Info(context.Background(), dst)
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != tt.wantFormat {
				t.Errorf("format = %q, want %q", info.Format, tt.wantFormat)
			}
			if info.VirtualSize != 8*mib {
				t.Errorf("virtual size = %d, want %d", info.VirtualSize, 8*mib)
			}
			if got := compressionType(t, dst); got != tt.wantCompression {
				t.Errorf("compression type = %q, want %q", got, tt.wantCompression)
			}
			if compressed := info.ActualSize < mib; compressed != tt.wantCompressed {
				t.Errorf("actual size = %d bytes for 2 MiB of data, want compressed = %v", info.ActualSize, tt.wantCompressed)
			}
			if out, err := exec.Command("qemu-img", "compare", src, dst).CombinedOutput(); err != nil {
				t.Errorf("qemu-img compare src dst: %v\n%s", err, out)
			}
			if err := Check(context.Background(), dst); err != nil {
				t.Errorf("Check(output) = %v", err)
			}
			if len(reports) == 0 || reports[len(reports)-1] != 100 {
				t.Errorf("progress reports = %v, want a final 100", reports)
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, ".out.img*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary files left behind: %v", leftovers)
			}
		})
	}
}

// compressionType returns the qcow2 compression type qemu-img info reports for
// path, or "" when it reports none.
func compressionType(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		FormatSpecific struct {
			Data struct {
				CompressionType string `json:"compression-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.FormatSpecific.Data.CompressionType
}

func TestConvertInvalidOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    ConvertOptions
		wantErr string
	}{
		{name: "unknown format", opts: ConvertOptions{Format: "vmdk"}, wantErr: `invalid output format "vmdk"`},
		{name: "unknown compression", opts: ConvertOptions{Compression: "lz4"}, wantErr: `invalid compression "lz4" for qcow2`},
		{name: "compressed raw", opts: ConvertOptions{Format: "raw", Compression: "zstd"}, wantErr: `invalid compression "zstd" for raw`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Convert(context.Background(), filepath.Join(dir, "src"), filepath.Join(dir, "dst"), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Convert = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckRawSkipped(t *testing.T) {
	requireQemuImg(t)
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(raw, make([]byte, mib), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(context.Background(), raw); err != nil {
		t.Errorf("Check(raw) = %v, want nil", err)
	}
}

func TestVersion(t *testing.T) {
	requireQemuImg(t)
	version, err := Version(context.Background())
	if err != nil {
		t.Fatalf("Version = %v", err)
	}
	if !regexp.MustCompile(`^\d+\.\d+`).MatchString(version) {
		t.Errorf("Version = %q, want a string starting with a version number", version)
	}
}

// installFakeQemuImg puts a shell script named qemu-img with the given body
// first on PATH.
func installFakeQemuImg(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n" + body
	if err := os.WriteFile(filepath.Join(dir, "qemu-img"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// fakeInfo is a shell snippet that prints the JSON of `qemu-img info` for a qcow2 image.
const fakeInfo = `if [ "$1" = info ]; then
  echo '{"format": "qcow2", "virtual-size": 1048576, "actual-size": 4096}'
  exit 0
fi
`

func TestConvertFailureRemovesOutput(t *testing.T) {
	installFakeQemuImg(t, fakeInfo+`
for last; do :; done
echo partial > "$last"
echo "    (42.00/100%)"
echo "qemu-img: error while writing at byte 1024: No space left on device" >&2
exit 1
`)
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.qcow2")
	if err := os.WriteFile(dst, []byte("older image"), 0o644); err != nil {
		t.Fatal(err)
	}

	var reports []float64
	err := Convert(context.Background(), filepath.Join(dir, "src.qcow2"), dst, ConvertOptions{
		Progress: func(pct float64) { reports = append(reports, pct) },
	})
	if err == nil {
		t.Fatal("Convert with a failing qemu-img = nil, want an error")
	}
	if !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("error %q does not include qemu-img's stderr", err)
	}
	entries, readErr := os.ReadDir(dir)
	if readErr != nil {
		t.Fatal(readErr)
	}
	for _, e := range entries {
		t.Errorf("file %q left in the output directory after a failed convert", e.Name())
	}
	if len(reports) != 1 || reports[0] != 42 {
		t.Errorf("progress reports = %v, want [42]", reports)
	}
}

func TestCheckFakeResults(t *testing.T) {
	tests := []struct {
		name    string
		output  string
		exit    int
		wantErr []string
	}{
		{name: "clean", output: `{"check-errors": 0}`, exit: 0},
		{name: "corruptions", output: `{"corruptions": 3, "check-errors": 0}`, exit: 2, wantErr: []string{"3 corruptions"}},
		{name: "leaks", output: `{"leaks": 5, "check-errors": 0}`, exit: 3, wantErr: []string{"5 leaked clusters", "-r leaks"}},
		{name: "incomplete", output: `{"check-errors": 1}`, exit: 1, wantErr: []string{"1 errors during the check"}},
		{name: "no json", output: ``, exit: 1, wantErr: []string{"failed to check", "broken image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			installFakeQemuImg(t, fakeInfo+`echo '`+tt.output+`'
echo "broken image" >&2
exit `+strconv.Itoa(tt.exit)+"\n")
			err := Check(context.Background(), "disk.qcow2")
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check = nil, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestQemuImgMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	calls := map[string]func() error{
		"Version": func() error { _, err := Version(context.Background()); return err },
		"Info":    func() error { _, err := Info(context.Background(), filepath.Join(dir, "x")); return err },
		"CreateBlank": func() error {
			return CreateBlank(context.Background(), filepath.Join(dir, "x"), mib)
		},
		"Convert": func() error {
			return Convert(context.Background(), filepath.Join(dir, "x"), filepath.Join(dir, "y"), ConvertOptions{})
		},
		"Check": func() error { return Check(context.Background(), filepath.Join(dir, "x")) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrQemuImgNotFound) {
				t.Errorf("%s error = %v, want ErrQemuImgNotFound", name, err)
			}
			if err != nil && !strings.Contains(err.Error(), "qemu-utils") {
				t.Errorf("%s error %q does not name the qemu-utils package", name, err)
			}
		})
	}
}

func TestReadProgress(t *testing.T) {
	input := "    (0.00/100%)\r    (12.50/100%)\r    (100.00/100%)\r\nother line\n(7/100%)"
	var got []float64
	readProgress(strings.NewReader(input), func(pct float64) { got = append(got, pct) })
	want := []float64{0, 12.5, 100, 7}
	if len(got) != len(want) {
		t.Fatalf("progress = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("progress[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}
