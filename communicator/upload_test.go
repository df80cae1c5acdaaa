package communicator

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bakeimg/bake/communicator/sshtest"
)

// writeTree creates files under dir; a name ending in "/" is a directory.
func writeTree(t *testing.T, dir string, files map[string]fs.FileMode) {
	t.Helper()
	for name, mode := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	// Directory modes last, since a read-only directory blocks its files.
	for name, mode := range files {
		if strings.HasSuffix(name, "/") {
			if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkTree asserts that dir holds the files with their contents and modes.
func checkTree(t *testing.T, dir string, files map[string]fs.FileMode) {
	t.Helper()
	for name, mode := range files {
		p := filepath.Join(dir, name)
		info, err := os.Stat(p)
		if err != nil {
			t.Errorf("uploaded tree lacks %s: %v", name, err)
			continue
		}
		if got := info.Mode() & modeBits; got != mode {
			t.Errorf("mode of %s = %v, want %v", name, got, mode)
		}
		if strings.HasSuffix(name, "/") {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := "content of " + name + "\n"; string(data) != want {
			t.Errorf("content of %s = %q, want %q", name, data, want)
		}
	}
}

// tree is a directory to upload, with Go mode bits: fs.ModeSetuid and
// fs.ModeSticky, not octal 04000 and 01000.
var tree = map[string]fs.FileMode{
	"setup.sh":             0o755,
	"conf/app.conf":        0o640,
	"conf/private/key":     0o600,
	"it's a file.txt":      0o644,
	"empty/":               0o700,
	"conf/":                0o750,
	"bin/tool":             0o755 | fs.ModeSetuid,
	"shared/":              0o777 | fs.ModeSticky,
	"$(touch pwned)/x.txt": 0o644,
}

func TestUploadDirectory(t *testing.T) {
	tests := []struct {
		name     string
		server   *sshtest.Server
		wantSFTP bool
	}{
		{name: "sftp", server: &sshtest.Server{}, wantSFTP: true},
		{name: "exec fallback", server: &sshtest.Server{NoSFTP: true}, wantSFTP: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tree
			local := t.TempDir()
			writeTree(t, local, files)
			remoteRoot := t.TempDir()
			t.Chdir(remoteRoot)
			remote := filepath.Join(remoteRoot, "new parent", "dest")

			client := connectTo(t, tt.server)
			if err := client.Upload(context.Background(), local, remote); err != nil {
				t.Fatalf("Upload() = %v", err)
			}
			checkTree(t, remote, files)

			if _, err := os.Stat(filepath.Join(remoteRoot, "pwned")); err == nil {
				t.Error("a file name was run as a shell command")
			}
			sftpUsed := tt.server.SFTPSessions() > 0
			if sftpUsed != tt.wantSFTP {
				t.Errorf("SFTP sessions = %d, want SFTP used = %v", tt.server.SFTPSessions(), tt.wantSFTP)
			}
			if !tt.wantSFTP && len(tt.server.Commands()) == 0 {
				t.Error("fallback ran no exec requests")
			}
		})
	}
}

func TestUploadFile(t *testing.T) {
	tests := []struct {
		name       string
		server     *sshtest.Server
		remote     string // relative to the remote root
		wantRemote string
	}{
		{name: "sftp to path", server: &sshtest.Server{}, remote: "etc/motd", wantRemote: "etc/motd"},
		{name: "sftp into directory", server: &sshtest.Server{}, remote: "etc/", wantRemote: "etc/setup.sh"},
		{name: "exec to path", server: &sshtest.Server{NoSFTP: true}, remote: "etc/motd", wantRemote: "etc/motd"},
		{name: "exec into directory", server: &sshtest.Server{NoSFTP: true}, remote: "etc/", wantRemote: "etc/setup.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := t.TempDir()
			writeTree(t, local, map[string]fs.FileMode{"setup.sh": 0o750})
			remoteRoot := t.TempDir()
			client := connectTo(t, tt.server)

			err := client.Upload(context.Background(), filepath.Join(local, "setup.sh"), remoteRoot+"/"+tt.remote)
			if err != nil {
				t.Fatalf("Upload() = %v", err)
			}
			info, err := os.Stat(filepath.Join(remoteRoot, tt.wantRemote))
			if err != nil {
				t.Fatalf("uploaded file missing: %v", err)
			}
			if info.Mode().Perm() != 0o750 {
				t.Errorf("mode = %v, want 0750", info.Mode().Perm())
			}
		})
	}
}

func TestUploadErrors(t *testing.T) {
	tests := []struct {
		name   string
		server *sshtest.Server
		local  func(t *testing.T) string
		remote func(root string) string
		want   string
	}{
		{
			name:   "missing local file",
			server: &sshtest.Server{},
			local:  func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing.sh") },
			remote: func(root string) string { return root + "/x" },
			want:   "missing.sh",
		},
		{
			name:   "remote parent is a file, sftp",
			server: &sshtest.Server{},
			local:  localFile,
			remote: blockedRemote,
			want:   "failed to upload",
		},
		{
			name:   "remote parent is a file, exec",
			server: &sshtest.Server{NoSFTP: true},
			local:  localFile,
			remote: blockedRemote,
			want:   "exited with status 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := connectTo(t, tt.server)
			local := tt.local(t)
			err := client.Upload(context.Background(), local, tt.remote(t.TempDir()))
			if err == nil {
				t.Fatal("Upload() succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Upload() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func localFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// blockedRemote returns a path whose parent is a regular file.
func blockedRemote(root string) string {
	os.WriteFile(filepath.Join(root, "file"), nil, 0o644)
	return root + "/file/sub/target"
}

func TestUploadSymlinkToDirectory(t *testing.T) {
	local := t.TempDir()
	writeTree(t, local, map[string]fs.FileMode{"real/a": 0o644})
	if err := os.Symlink(filepath.Join(local, "real"), filepath.Join(local, "link")); err != nil {
		t.Fatal(err)
	}
	client := connectTo(t, &sshtest.Server{})
	err := client.Upload(context.Background(), local, t.TempDir()+"/dest")
	if err == nil || !strings.Contains(err.Error(), "symbolic link to a directory") {
		t.Errorf("Upload() error = %v, want the symbolic link named", err)
	}
}
