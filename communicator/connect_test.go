package communicator

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bakeimg/bake/communicator/sshtest"
	"github.com/bakeimg/bake/event"
)

// recorder collects events for assertions.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Emit(ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Message)
	}
	return out
}

func newTestKey(t *testing.T) *Key {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// refusedAddr returns a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr returns a loopback address that accepts TCP connections and
// never sends a byte, like QEMU's port forward before the guest is up.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// resetAddr returns a loopback address that closes every connection at
// once.
func resetAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func TestConnectFailureClasses(t *testing.T) {
	tests := []struct {
		name      string
		addr      func(t *testing.T) string
		wantClass FailureClass
	}{
		{name: "no listener", addr: refusedAddr, wantClass: ConnectionRefused},
		{name: "no handshake", addr: silentAddr, wantClass: HandshakeTimeout},
		{name: "closed at once", addr: resetAddr, wantClass: ConnectionReset},
		{
			name: "auth always rejected",
			addr: func(t *testing.T) string {
				return (&sshtest.Server{RejectFirst: 1 << 30}).Start(t).Addr
			},
			wantClass: AuthRejected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr(t)
			rec := &recorder{}
			_, err := Connect(context.Background(), Config{
				Addr:           addr,
				User:           "root",
				Signer:         newTestKey(t).Signer,
				Timeout:        900 * time.Millisecond,
				AttemptTimeout: 200 * time.Millisecond,
				RetryInterval:  50 * time.Millisecond,
				Emitter:        event.NewEmitter("b", rec),
			})
			if err == nil {
				t.Fatal("Connect() succeeded, want an error")
			}
			var connErr *ConnectError
			if !errors.As(err, &connErr) {
				t.Fatalf("error %T is not a *ConnectError: %v", err, err)
			}
			if connErr.Class != tt.wantClass {
				t.Errorf("class = %q, want %q (error: %v)", connErr.Class, tt.wantClass, err)
			}
			wantPrefix := "ssh: timed out after 900ms waiting for root@" + addr + " ("
			if !strings.HasPrefix(err.Error(), wantPrefix) {
				t.Errorf("error = %q, want prefix %q", err, wantPrefix)
			}
			if !strings.Contains(err.Error(), "attempts; last failure: "+string(tt.wantClass)+": ") {
				t.Errorf("error = %q, want the last failure class %q", err, tt.wantClass)
			}
			if connErr.Attempts < 2 {
				t.Errorf("attempts = %d, want at least 2", connErr.Attempts)
			}

			msgs := rec.messages()
			if len(msgs) != 2 {
				t.Fatalf("events = %q, want one for the first attempt and one for the failure class", msgs)
			}
			if !strings.HasPrefix(msgs[0], "waiting for SSH on root@"+addr) {
				t.Errorf("first event = %q", msgs[0])
			}
			if !strings.Contains(msgs[1], "(attempt 1): "+string(tt.wantClass)) {
				t.Errorf("second event = %q, want the class of attempt 1", msgs[1])
			}
		})
	}
}

func TestConnectRetriesRejectedAuth(t *testing.T) {
	key := newTestKey(t)
	srv := (&sshtest.Server{RejectFirst: 2, AuthorizedKey: key.Signer.PublicKey()}).Start(t)
	rec := &recorder{}
	client, err := Connect(context.Background(), Config{
		Addr:          srv.Addr,
		User:          "root",
		Signer:        key.Signer,
		Timeout:       10 * time.Second,
		RetryInterval: 10 * time.Millisecond,
		Emitter:       event.NewEmitter("b", rec),
	})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	defer client.Close()

	if got := srv.Connections(); got != 3 {
		t.Errorf("server saw %d connections, want 3", got)
	}
	want := ssh.FingerprintSHA256(srv.HostKey.PublicKey())
	if got := client.HostKeyFingerprint(); got != want {
		t.Errorf("HostKeyFingerprint() = %q, want %q", got, want)
	}
	if got := client.HostKey().Marshal(); string(got) != string(srv.HostKey.PublicKey().Marshal()) {
		t.Error("HostKey() differs from the server's host key")
	}

	msgs := rec.messages()
	if len(msgs) != 3 {
		t.Fatalf("events = %q, want start, auth rejected, connected", msgs)
	}
	if !strings.Contains(msgs[1], "auth rejected") {
		t.Errorf("second event = %q, want auth rejected", msgs[1])
	}
	if !strings.HasPrefix(msgs[2], "connected as root (") || !strings.Contains(msgs[2], "3 attempts, host key "+want) {
		t.Errorf("last event = %q, want connected after 3 attempts with the host key", msgs[2])
	}
}

func TestConnectPassword(t *testing.T) {
	srv := (&sshtest.Server{Password: "s3cret"}).Start(t)
	rec := &recorder{}
	client, err := Connect(context.Background(), Config{
		Addr:     srv.Addr,
		User:     "admin",
		Password: "s3cret",
		Emitter:  event.NewEmitter("b", rec),
	})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	client.Close()
	for _, m := range rec.messages() {
		if strings.Contains(m, "s3cret") {
			t.Errorf("event %q contains the password", m)
		}
	}
}

func TestConnectCanceled(t *testing.T) {
	addr := silentAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := Connect(ctx, Config{Addr: addr, User: "root", Password: "x", Timeout: time.Minute, AttemptTimeout: 5 * time.Second})
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Connect() returned after %s, want soon after the cancel", elapsed)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if !strings.HasPrefix(err.Error(), "ssh: stopped waiting for root@"+addr+" after ") {
		t.Errorf("error = %q", err)
	}
}

func TestConnectMissingCredentials(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no user", cfg: Config{Addr: "127.0.0.1:1", Password: "x"}, want: "missing user name"},
		{name: "no password or key", cfg: Config{Addr: "127.0.0.1:1", User: "root"}, want: `no credentials for user "root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Connect(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Connect() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func newRecordingEmitter(rec *recorder) *event.Emitter {
	return event.NewEmitter("b", rec)
}

// slowProxy forwards to addr, but holds back the server's bytes after its
// version banner for delay, like sshd in a guest that emulation slows down.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", addr)
			if err != nil {
				client.Close()
				continue
			}
			go func() {
				buf := make([]byte, 32<<10)
				first := true
				for {
					n, err := server.Read(buf)
					if n > 0 {
						if !first {
							time.Sleep(delay)
						}
						first = false
						client.Write(buf[:n])
					}
					if err != nil {
						client.Close()
						return
					}
				}
			}()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						server.Write(buf[:n])
					}
					if err != nil {
						server.Close()
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestConnectSlowHandshakeAfterBanner(t *testing.T) {
	key := newTestKey(t)
	srv := (&sshtest.Server{AuthorizedKey: key.Signer.PublicKey()}).Start(t)
	addr := slowProxy(t, srv.Addr, 300*time.Millisecond)

	// Each step of the handshake after the banner takes longer than a whole
	// attempt may take before the banner; the attempt must not give up.
	client, err := Connect(context.Background(), Config{
		Addr: addr, User: "root", Signer: key.Signer,
		Timeout: 20 * time.Second, AttemptTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Connect through a slow sshd: %v", err)
	}
	client.Close()
}
