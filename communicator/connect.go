package communicator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bakeimg/bake/event"
)

// Defaults for the zero values of Config's durations.
const (
	DefaultTimeout        = 5 * time.Minute
	DefaultAttemptTimeout = 2 * time.Second
	// DefaultHandshakeTimeout is long because a banner proves sshd runs:
	// giving up on a slow handshake only starts a slower one.
	DefaultHandshakeTimeout = time.Minute
	DefaultRetryInterval    = 200 * time.Millisecond
)

// Config describes how to reach a guest's sshd.
type Config struct {
	Addr     string // host:port, usually 127.0.0.1 and QEMU's forwarded port
	User     string
	Password string // tried after Signer, also for keyboard-interactive prompts
	Signer   ssh.Signer
	// Timeout bounds the whole wait for sshd, across all attempts. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// AttemptTimeout bounds one attempt until the server's first bytes
	// (its version banner) arrive. Zero means DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// HandshakeTimeout bounds the rest of the attempt once the banner has
	// arrived: key exchange and authentication, which a guest under
	// emulation on a busy host can take many seconds to finish. Zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// RetryInterval is the pause between attempts. Zero means
	// DefaultRetryInterval.
	RetryInterval time.Duration
	Emitter       *event.Emitter // nil drops events
}

func (cfg *Config) setDefaults() {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.Emitter == nil {
		cfg.Emitter = event.NewEmitter("", event.Discard)
	}
}

// FailureClass names why one connection attempt failed.
type FailureClass string

const (
	ConnectionRefused FailureClass = "connection refused" // nothing listens on the port yet
	ConnectTimeout    FailureClass = "connect timeout"    // the TCP connect did not finish in time
	HandshakeTimeout  FailureClass = "handshake timeout"  // TCP connected, but sshd did not finish the handshake in time
	ConnectionReset   FailureClass = "connection reset"   // the peer closed or reset the connection during the handshake
	AuthRejected      FailureClass = "auth rejected"      // sshd rejected every credential
	OtherFailure      FailureClass = "connect failed"
)

// ConnectError is returned by Connect when no attempt succeeded before the
// timeout or the context ended.
type ConnectError struct {
	User     string
	Addr     string
	Timeout  time.Duration
	Elapsed  time.Duration
	Attempts int
	Class    FailureClass // class of the last failure
	Last     error        // last failure
	Cause    error        // the context's error when it ended first, otherwise nil
}

func (e *ConnectError) Error() string {
	last := "none"
	if e.Last != nil {
		last = string(e.Class) + ": " + e.Last.Error()
	}
	detail := fmt.Sprintf("(%d attempts; last failure: %s)", e.Attempts, last)
	if e.Cause != nil {
		return fmt.Sprintf("ssh: stopped waiting for %s@%s after %s %s: %v",
			e.User, e.Addr, e.Elapsed.Round(time.Millisecond), detail, e.Cause)
	}
	return fmt.Sprintf("ssh: timed out after %s waiting for %s@%s %s", e.Timeout, e.User, e.Addr, detail)
}

// Unwrap returns the context's error, if any, and the last failure.
func (e *ConnectError) Unwrap() []error {
	var errs []error
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	if e.Last != nil {
		errs = append(errs, e.Last)
	}
	return errs
}

// Connect retries short connection attempts until one succeeds, cfg.Timeout
// passes or ctx ends. QEMU's user-mode networking accepts a forwarded TCP
// connection at once, even before the guest has a network, and the
// handshake then hangs until sshd starts. So every attempt has its own
// deadline on the connect, handshake and authentication together. Rejected
// credentials are retried too, because an installer's own sshd may run
// before the installed system's.
//
// Connect accepts any host key, since the guest is freshly built, and
// records it for HostKey.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	cfg.setDefaults()
	if cfg.User == "" {
		return nil, errors.New("ssh: missing user name: set the recipe's ssh username")
	}
	if cfg.Signer == nil && cfg.Password == "" {
		return nil, fmt.Errorf("ssh: no credentials for user %q: set a password or a private key", cfg.User)
	}
	cfg.Emitter.AddSecrets(cfg.Password)

	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	cfg.Emitter.Infof("waiting for SSH on %s@%s (timeout %s)", cfg.User, cfg.Addr, cfg.Timeout)
	fail := &ConnectError{User: cfg.User, Addr: cfg.Addr, Timeout: cfg.Timeout}
	for {
		fail.Attempts++
		deadline, capped := attemptDeadline(waitCtx, cfg.AttemptTimeout)
		client, err := attempt(waitCtx, cfg, deadline)
		if err == nil {
			elapsed := time.Since(start)
			cfg.Emitter.Infof("connected as %s (%s, %d attempts, host key %s)",
				cfg.User, formatElapsed(elapsed), fail.Attempts, client.HostKeyFingerprint())
			return client, nil
		}
		// A failure caused by the wait itself ending is less informative
		// than the failure before it, so it is kept only when it is the first.
		class := classify(err)
		cut := waitCtx.Err() != nil || capped && (class == HandshakeTimeout || class == ConnectTimeout)
		if !cut || fail.Last == nil {
			if class != fail.Class {
				cfg.Emitter.Infof("SSH not ready yet (attempt %d): %s: %v", fail.Attempts, class, err)
			}
			fail.Class, fail.Last = class, err
		}

		if !sleep(waitCtx, cfg.RetryInterval) {
			fail.Elapsed = time.Since(start)
			if ctx.Err() != nil {
				fail.Cause = ctx.Err()
			}
			return nil, fail
		}
	}
}

// attemptDeadline returns the deadline of the next attempt, and whether it
// was capped to ctx's deadline.
func attemptDeadline(ctx context.Context, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		return d, true
	}
	return deadline, false
}

// attempt makes one connection attempt that ends by deadline.
func attempt(ctx context.Context, cfg Config, deadline time.Time) (*Client, error) {
	dialCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var dialer net.Dialer
	conn, err := dialer.DialContext(dialCtx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	// QEMU's user-mode network accepts the TCP connection before the guest
	// is up, and the handshake then hangs without a byte. So the short
	// deadline lasts until the server's banner arrives; after that sshd is
	// known to run and the handshake gets HandshakeTimeout. Closing the
	// connection when ctx ends stops a handshake that is blocked in a read.
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	overall, hasOverall := ctx.Deadline()
	conn = &bannerConn{Conn: conn, onBanner: func(c net.Conn) {
		extended := time.Now().Add(cfg.HandshakeTimeout)
		if hasOverall && overall.Before(extended) {
			extended = overall
		}
		if extended.After(deadline) {
			c.SetDeadline(extended)
		}
	}}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var hostKey ssh.PublicKey
	clientConfig := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              authMethods(cfg),
		HostKeyAlgorithms: hostKeyAlgorithms,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			hostKey = key
			return nil
		},
	}
	sshConn, chans, reqs, err := ssh.NewClientConn(conn, cfg.Addr, clientConfig)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if !stop() || conn.SetDeadline(time.Time{}) != nil {
		sshConn.Close()
		return nil, fmt.Errorf("ssh: connection to %s closed after the handshake: %w", cfg.Addr, context.Cause(ctx))
	}
	return newClient(ssh.NewClient(sshConn, chans, reqs), hostKey, cfg), nil
}

// bannerConn calls onBanner once, when the first bytes arrive.
type bannerConn struct {
	net.Conn
	once     sync.Once
	onBanner func(net.Conn)
}

func (c *bannerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { c.onBanner(c.Conn) })
	}
	return n, err
}

// hostKeyAlgorithms lists ed25519 and ECDSA before RSA. Dropbear 2022.83,
// as shipped in Debian 12, aborts the handshake with "Failed assertion
// (rsa.c:164): `key != NULL'" when it has no RSA host key and the client
// prefers RSA (mkj/dropbear#219, fixed in later releases).
var hostKeyAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA,
}

func authMethods(cfg Config) []ssh.AuthMethod {
	var methods []ssh.AuthMethod
	if cfg.Signer != nil {
		methods = append(methods, ssh.PublicKeys(cfg.Signer))
	}
	if cfg.Password != "" {
		methods = append(methods,
			ssh.Password(cfg.Password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = cfg.Password
				}
				return answers, nil
			}))
	}
	return methods
}

// classify names the failure of one attempt.
func classify(err error) FailureClass {
	var opErr *net.OpError
	isDial := errors.As(err, &opErr) && opErr.Op == "dial"
	var netErr net.Error
	timedOut := errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout())

	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnectionRefused
	case timedOut && isDial:
		return ConnectTimeout
	case timedOut:
		return HandshakeTimeout
	// x/crypto/ssh returns authentication failures as plain strings.
	case strings.Contains(err.Error(), "unable to authenticate"),
		strings.Contains(err.Error(), "authentication failures"):
		return AuthRejected
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ConnectionReset
	}
	return OtherFailure
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return ctx.Err() == nil
	}
}

// formatElapsed rounds d to tenths of a second, as in "2.1s".
func formatElapsed(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
