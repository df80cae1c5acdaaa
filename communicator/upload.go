package communicator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
)

// modeBits are the mode bits an upload preserves.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// Upload copies the local file or directory to remote, which becomes the
// file or the directory itself, and creates remote's parent directories.
// A remote path ending in "/" is a directory to copy into instead.
// A directory is copied recursively. Mode bits are preserved; ownership and
// times are not. Upload uses SFTP and, when the server has no sftp
// subsystem (dropbear without an sftp-server binary, for one), falls back to "mkdir -p" and "cat >" over
// exec.
func (c *Client) Upload(ctx context.Context, local, remote string) error {
	if _, err := os.Stat(local); err != nil {
		return fmt.Errorf("failed to upload %q: %w", local, err)
	}
	if strings.HasSuffix(remote, "/") {
		remote = path.Join(remote, filepath.Base(local))
	}
	var up uploader
	sftpClient, err := c.sftpClient()
	if err != nil {
		up = &execUploader{c: c, ctx: ctx}
	} else {
		defer sftpClient.Close()
		stop := context.AfterFunc(ctx, func() { sftpClient.Close() })
		defer stop()
		up = &sftpUploader{client: sftpClient}
	}
	if err := uploadTree(up, local, remote); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("upload of %q to %q interrupted: %w", local, remote, ctx.Err())
		}
		return fmt.Errorf("failed to upload %q to %q on %s: %w", local, remote, c.addr, err)
	}
	return nil
}

// sftpClient opens an SFTP session, or returns an error when the server has
// no sftp subsystem. A rejection is remembered for later uploads.
//
// Dropbear always gets the exec fallback. Dropbear 2022.83 accepts the sftp
// subsystem request even without an sftp-server binary, and the SFTP session
// then fails. After that, TestDropbearRepeatedUploads saw about one
// connection in ten fail its next session or drop entirely, when packets
// arrived for the closed SFTP channel.
// NOTE: this also skips SFTP on dropbear builds that do have sftp-server.
func (c *Client) sftpClient() (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noSFTP {
		return nil, errors.New("no sftp subsystem")
	}
	if version := string(c.client.ServerVersion()); strings.Contains(strings.ToLower(version), "dropbear") {
		c.noSFTP = true
		c.emitter.Infof("%s runs %s, uploading over exec instead of SFTP", c.addr, version)
		return nil, errors.New("dropbear server")
	}
	client, err := sftp.NewClient(c.client)
	if err != nil {
		c.noSFTP = true
		c.emitter.Infof("SFTP is not available on %s (%v), uploading over exec instead", c.addr, err)
		return nil, err
	}
	return client, nil
}

// uploader is one way of writing files on the guest.
type uploader interface {
	mkdir(remote string, mode fs.FileMode) error
	// writeFile creates or replaces remote with the contents of r.
	writeFile(remote string, r io.Reader, mode fs.FileMode) error
}

// uploadTree walks local and recreates it at remote.
func uploadTree(up uploader, local, remote string) error {
	if err := up.mkdir(path.Dir(remote), 0); err != nil {
		return err
	}
	return filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(local, p)
		if err != nil {
			return err
		}
		target := path.Join(remote, filepath.ToSlash(rel))

		// Stat follows symbolic links, so a link uploads what it points to.
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir() && d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%q is a symbolic link to a directory, which upload does not follow: copy the directory instead", p)
		case info.IsDir():
			return up.mkdir(target, info.Mode()&modeBits)
		case info.Mode().IsRegular():
			return uploadFile(up, p, target, info.Mode()&modeBits)
		}
		return fmt.Errorf("%q is not a regular file or directory", p)
	})
}

func uploadFile(up uploader, local, remote string, mode fs.FileMode) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	return up.writeFile(remote, f, mode)
}

type sftpUploader struct {
	client *sftp.Client
}

// mkdir creates remote and its parents, and sets its mode unless mode is 0.
func (u *sftpUploader) mkdir(remote string, mode fs.FileMode) error {
	if err := u.client.MkdirAll(remote); err != nil {
		return fmt.Errorf("failed to create directory %q: %w", remote, err)
	}
	if mode == 0 {
		return nil
	}
	if err := u.client.Chmod(remote, mode); err != nil {
		return fmt.Errorf("failed to set mode of %q: %w", remote, err)
	}
	return nil
}

func (u *sftpUploader) writeFile(remote string, r io.Reader, mode fs.FileMode) error {
	f, err := u.client.Create(remote)
	if err != nil {
		return fmt.Errorf("failed to create %q: %w", remote, err)
	}
	if _, err := f.ReadFrom(r); err != nil {
		f.Close()
		return fmt.Errorf("failed to write %q: %w", remote, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write %q: %w", remote, err)
	}
	if err := u.client.Chmod(remote, mode); err != nil {
		return fmt.Errorf("failed to set mode of %q: %w", remote, err)
	}
	return nil
}

// execUploader writes files with shell commands, for servers without SFTP.
type execUploader struct {
	c   *Client
	ctx context.Context
}

func (u *execUploader) mkdir(remote string, mode fs.FileMode) error {
	cmd := "mkdir -p " + Quote(remote)
	if mode != 0 {
		cmd += " && chmod " + fmt.Sprintf("%o", uint32(chmodBits(mode))) + " " + Quote(remote)
	}
	return u.run(cmd, nil)
}

func (u *execUploader) writeFile(remote string, r io.Reader, mode fs.FileMode) error {
	cmd := "cat > " + Quote(remote) + " && chmod " + fmt.Sprintf("%o", uint32(chmodBits(mode))) + " " + Quote(remote)
	return u.run(cmd, r)
}

// run runs cmd with stdin from r and fails on a non-zero exit status,
// naming the command and its standard error.
func (u *execUploader) run(cmd string, stdin io.Reader) error {
	session, err := u.c.client.NewSession()
	if err != nil {
		return u.c.sessionError(err)
	}
	defer session.Close()
	stop := context.AfterFunc(u.ctx, func() { session.Close() })
	defer stop()

	var stderr limitedBuffer
	session.Stdin = stdin
	session.Stderr = &stderr
	code, err := exitStatus(session.Run(cmd))
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("command %q exited with status %d: %s", cmd, code, stderr.String())
	}
	return nil
}

// chmodBits converts Go's mode bits to the octal bits chmod takes.
func chmodBits(mode fs.FileMode) fs.FileMode {
	bits := mode & fs.ModePerm
	if mode&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// limitedBuffer keeps the first 4 KiB written to it, enough for an error
// message.
type limitedBuffer struct {
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	const limit = 4 << 10
	if room := limit - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return string(b.buf) }
