package communicator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bakeimg/bake/event"
)

// ErrDisconnected means the connection dropped before the remote command
// reported an exit status, as when the command reboots the guest.
var ErrDisconnected = errors.New("ssh: connection dropped before the command exited")

// Client is a connected SSH session to a guest.
type Client struct {
	client  *ssh.Client
	hostKey ssh.PublicKey
	user    string
	addr    string
	emitter *event.Emitter

	mu     sync.Mutex
	noSFTP bool // SFTP failed once already, or the server is dropbear
}

func newClient(c *ssh.Client, hostKey ssh.PublicKey, cfg Config) *Client {
	client := &Client{client: c, hostKey: hostKey, user: cfg.User, addr: cfg.Addr, emitter: cfg.Emitter}
	go client.keepalive(keepaliveInterval, keepaliveTimeout)
	return client
}

// HostKey returns the host key the guest presented.
func (c *Client) HostKey() ssh.PublicKey { return c.hostKey }

// HostKeyFingerprint returns the host key's SHA256 fingerprint, as in
// "SHA256:q3Lx…", the form ssh-keygen -l prints.
func (c *Client) HostKeyFingerprint() string {
	if c.hostKey == nil {
		return ""
	}
	return ssh.FingerprintSHA256(c.hostKey)
}

// Close closes the connection.
func (c *Client) Close() error {
	return c.client.Close()
}

// Run runs cmd through the remote user's shell with env exported first,
// and calls stdout and stderr, either of which may be nil, with each output
// line without its line ending. A final line without a newline is passed
// too. A non-zero exit status is returned as exitCode with a nil error. A
// command killed by a signal has exit code 128 plus the signal number. When
// the connection drops before the exit status arrives, the error wraps
// ErrDisconnected. Cancelling ctx sends SIGTERM to the command, closes the
// session and returns within cancelGrace. No callback runs after Run
// returns.
func (c *Client) Run(ctx context.Context, cmd string, env map[string]string, stdout, stderr func(line string)) (exitCode int, err error) {
	prefix, err := envPrefix(env)
	if err != nil {
		return -1, err
	}
	session, outPipe, errPipe, err := c.startSession(prefix + cmd)
	if err != nil {
		return -1, err
	}
	defer session.Close()

	outGate, errGate := &lineGate{emit: stdout}, &lineGate{emit: stderr}
	defer outGate.close()
	defer errGate.close()
	done := make(chan error, 1)
	go func() {
		var readers sync.WaitGroup
		readers.Go(func() { readLines(outPipe, outGate.send) })
		readers.Go(func() { readLines(errPipe, errGate.send) })
		readers.Wait()
		done <- session.Wait()
	}()

	select {
	case waitErr := <-done:
		if ctx.Err() == nil {
			return exitStatus(waitErr)
		}
	case <-ctx.Done():
		interrupt(session, done)
	}
	return -1, fmt.Errorf("ssh: command interrupted: %w", ctx.Err())
}

// cancelGrace bounds how long Run waits for a cancelled command's session
// to end. Servers such as dropbear keep the channel open until the command
// exits.
const cancelGrace = 2 * time.Second

// interrupt stops a running command. Without a pty, sshd leaves a command
// running when its session closes, until the command writes to the closed
// pipe, so the command gets SIGTERM first. Not every server delivers it:
// OpenSSH 9.2 rejects signal requests in root sessions, so there the
// command keeps running in the guest after Run returns.
func interrupt(session *ssh.Session, done <-chan error) {
	session.Signal(ssh.SIGTERM)
	session.Close()
	select {
	case <-done:
	case <-time.After(cancelGrace):
	}
}

// startSession opens a session, connects its output pipes and starts cmd.
func (c *Client) startSession(cmd string) (*ssh.Session, io.Reader, io.Reader, error) {
	session, err := c.client.NewSession()
	if err != nil {
		return nil, nil, nil, c.sessionError(err)
	}
	outPipe, err := session.StdoutPipe()
	if err != nil {
		session.Close()
		return nil, nil, nil, fmt.Errorf("ssh: failed to open stdout: %w", err)
	}
	errPipe, err := session.StderrPipe()
	if err != nil {
		session.Close()
		return nil, nil, nil, fmt.Errorf("ssh: failed to open stderr: %w", err)
	}
	if err := session.Start(cmd); err != nil {
		session.Close()
		return nil, nil, nil, c.sessionError(err)
	}
	return session, outPipe, errPipe, nil
}

// lineGate passes lines to emit until it is closed, so no line reaches a
// caller after Run has returned.
type lineGate struct {
	mu     sync.Mutex
	emit   func(string)
	closed bool
}

func (g *lineGate) send(line string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed && g.emit != nil {
		g.emit(line)
	}
}

func (g *lineGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// exitStatus turns the result of Session.Wait into an exit code.
func exitStatus(err error) (int, error) {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr):
		return exitErr.ExitStatus(), nil
	case errors.As(err, &missing), errors.Is(err, io.EOF):
		return -1, fmt.Errorf("%w: %v", ErrDisconnected, err)
	}
	return -1, fmt.Errorf("ssh: command failed: %w", err)
}

// sessionError wraps a failure to open or start a session, which on a
// connection that is gone means it dropped.
func (c *Client) sessionError(err error) error {
	if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "use of closed network connection") {
		return fmt.Errorf("%w: failed to open session on %s: %v", ErrDisconnected, c.addr, err)
	}
	return fmt.Errorf("ssh: failed to start command on %s: %w", c.addr, err)
}

// maxLineBytes bounds one output line. A longer line is passed on in
// pieces, so a command that prints without newlines cannot exhaust memory.
const maxLineBytes = 64 << 10

// readLines calls emit with every line from r. It drains r even when emit
// is nil, because unread output would fill the SSH window and stall the
// remote command.
func readLines(r io.Reader, emit func(string)) {
	br := bufio.NewReaderSize(r, maxLineBytes)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 && emit != nil {
			line := strings.TrimSuffix(string(chunk), "\n")
			emit(strings.TrimSuffix(line, "\r"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
