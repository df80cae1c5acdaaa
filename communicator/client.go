package communicator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

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
	noSFTP bool // the server rejected the sftp subsystem once already
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
// ErrDisconnected. Cancelling ctx closes the session.
func (c *Client) Run(ctx context.Context, cmd string, env map[string]string, stdout, stderr func(line string)) (exitCode int, err error) {
	prefix, err := envPrefix(env)
	if err != nil {
		return -1, err
	}
	session, err := c.client.NewSession()
	if err != nil {
		return -1, c.sessionError(err)
	}
	defer session.Close()

	outPipe, err := session.StdoutPipe()
	if err != nil {
		return -1, fmt.Errorf("ssh: failed to open stdout: %w", err)
	}
	errPipe, err := session.StderrPipe()
	if err != nil {
		return -1, fmt.Errorf("ssh: failed to open stderr: %w", err)
	}
	if err := session.Start(prefix + cmd); err != nil {
		return -1, c.sessionError(err)
	}
	// Without a pty, sshd leaves a command running when its session closes
	// until the command writes to the closed pipe, so the command gets
	// SIGTERM first. Servers without signal support ignore the request.
	stop := context.AfterFunc(ctx, func() {
		session.Signal(ssh.SIGTERM)
		session.Close()
	})
	defer stop()

	var readers sync.WaitGroup
	readers.Go(func() { readLines(outPipe, stdout) })
	readers.Go(func() { readLines(errPipe, stderr) })
	readers.Wait()
	waitErr := session.Wait()

	if ctx.Err() != nil {
		return -1, fmt.Errorf("ssh: command interrupted: %w", ctx.Err())
	}
	return exitStatus(waitErr)
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
