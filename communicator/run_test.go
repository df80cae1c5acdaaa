package communicator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bakeimg/bake/communicator/sshtest"
	"github.com/bakeimg/bake/event"
)

// connectTo starts srv and returns a client connected to it with a fresh
// key.
func connectTo(t *testing.T, srv *sshtest.Server) *Client {
	t.Helper()
	key := newTestKey(t)
	srv.AuthorizedKey = key.Signer.PublicKey()
	srv.Start(t)
	client, err := Connect(context.Background(), Config{Addr: srv.Addr, User: "root", Signer: key.Signer, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// lines collects output lines from concurrent callbacks.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, s)
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

func TestRunOutputAndExitCode(t *testing.T) {
	client := connectTo(t, &sshtest.Server{})
	tests := []struct {
		name       string
		cmd        string
		env        map[string]string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name:       "lines and trailing partial line",
			cmd:        `printf 'one\ntwo\r\nthree'`,
			wantStdout: []string{"one", "two", "three"},
		},
		{
			name:       "stderr and exit status",
			cmd:        `echo out; echo err >&2; exit 3`,
			wantCode:   3,
			wantStdout: []string{"out"},
			wantStderr: []string{"err"},
		},
		{
			name: "environment quoting",
			cmd:  `printf '%s\n' "$GREETING" "$EMPTY" "$B_2"`,
			env: map[string]string{
				"GREETING": `it's a "test" $HOME ` + "`id`",
				"EMPTY":    "",
				"B_2":      "x;y",
			},
			wantStdout: []string{`it's a "test" $HOME ` + "`id`", "", "x;y"},
		},
		{
			name:     "no output",
			cmd:      "true",
			wantCode: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr lines
			code, err := client.Run(context.Background(), tt.cmd, tt.env, stdout.add, stderr.add)
			if err != nil {
				t.Fatalf("Run() error = %v", err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if got := stdout.all(); !slices.Equal(got, tt.wantStdout) {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
			if got := stderr.all(); !slices.Equal(got, tt.wantStderr) {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
		})
	}
}

func TestRunNilCallbacks(t *testing.T) {
	client := connectTo(t, &sshtest.Server{})
	code, err := client.Run(context.Background(), "seq 1 20000; seq 1 20000 >&2; exit 4", nil, nil, nil)
	if err != nil || code != 4 {
		t.Errorf("Run() = %d, %v, want 4, nil", code, err)
	}
}

func TestRunLongLineIsSplit(t *testing.T) {
	client := connectTo(t, &sshtest.Server{})
	var stdout lines
	_, err := client.Run(context.Background(), "head -c 150000 /dev/zero | tr '\\0' x; echo; echo end", nil, stdout.add, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := stdout.all()
	total := 0
	for _, l := range got[:len(got)-1] {
		if len(l) > maxLineBytes {
			t.Errorf("line of %d bytes, want at most %d", len(l), maxLineBytes)
		}
		total += len(l)
	}
	if total != 150000 {
		t.Errorf("long line pieces add up to %d bytes, want 150000", total)
	}
	if got[len(got)-1] != "end" {
		t.Errorf("last line = %q, want \"end\"", got[len(got)-1])
	}
}

func TestRunInvalidEnvironmentName(t *testing.T) {
	client := connectTo(t, &sshtest.Server{})
	_, err := client.Run(context.Background(), "true", map[string]string{"BAD-NAME": "x"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `invalid environment variable name "BAD-NAME"`) {
		t.Errorf("Run() error = %v, want the invalid name", err)
	}
}

func TestRunSignalAndDisconnect(t *testing.T) {
	tests := []struct {
		name     string
		result   sshtest.Result
		wantCode int
		wantErr  error
	}{
		{name: "killed by signal", result: sshtest.Result{Signal: "KILL"}, wantCode: 137},
		{name: "connection dropped", result: sshtest.Result{Drop: true}, wantCode: -1, wantErr: ErrDisconnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &sshtest.Server{Handle: func(cmd string, ch ssh.Channel) sshtest.Result {
				ch.Write([]byte("before\n"))
				return tt.result
			}}
			client := connectTo(t, srv)
			var stdout lines
			code, err := client.Run(context.Background(), "reboot", nil, stdout.add, nil)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if got := stdout.all(); !slices.Equal(got, []string{"before"}) {
				t.Errorf("stdout = %q, want the line before the end", got)
			}
		})
	}
}

func TestRunAfterDisconnect(t *testing.T) {
	srv := &sshtest.Server{Handle: func(string, ssh.Channel) sshtest.Result { return sshtest.Result{Drop: true} }}
	client := connectTo(t, srv)
	client.Run(context.Background(), "reboot", nil, nil, nil)
	_, err := client.Run(context.Background(), "true", nil, nil, nil)
	if !errors.Is(err, ErrDisconnected) {
		t.Errorf("second Run() error = %v, want ErrDisconnected", err)
	}
}

func TestRunCanceled(t *testing.T) {
	client := connectTo(t, &sshtest.Server{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := client.Run(ctx, "echo started; sleep 30", nil, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run() error = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Run() returned after %s, want soon after the cancel", elapsed)
	}
}

func TestQuote(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{in: "", want: "''"},
		{in: "plain", want: "'plain'"},
		{in: "it's", want: `'it'\''s'`},
		{in: "$x `y` \"z\"", want: "'$x `y` \"z\"'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestKeepaliveClosesDeadConnection(t *testing.T) {
	srv := &sshtest.Server{IgnoreGlobalRequests: true}
	client := connectTo(t, srv)
	rec := &recorder{}
	client.emitter = event.NewEmitter("b", rec)

	done := make(chan struct{})
	go func() {
		client.keepalive(20*time.Millisecond, 100*time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive did not give up on a peer that never replies")
	}

	_, err := client.Run(context.Background(), "true", nil, nil, nil)
	if !errors.Is(err, ErrDisconnected) {
		t.Errorf("Run() after keepalive timeout = %v, want ErrDisconnected", err)
	}
	msgs := rec.messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "keepalive") {
		t.Errorf("events = %q, want one keepalive warning", msgs)
	}
}

func TestKeepaliveStopsOnClose(t *testing.T) {
	client := connectTo(t, &sshtest.Server{})
	done := make(chan struct{})
	go func() {
		client.keepalive(20*time.Millisecond, time.Second)
		close(done)
	}()
	time.Sleep(100 * time.Millisecond)
	client.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive kept running after Close")
	}
}

func TestRunCanceledCommandIgnoresClose(t *testing.T) {
	release := make(chan struct{})
	srv := &sshtest.Server{Handle: func(_ string, ch ssh.Channel) sshtest.Result {
		ch.Write([]byte("started\n"))
		<-release
		ch.Write([]byte("late\n"))
		return sshtest.Result{}
	}}
	client := connectTo(t, srv)
	var releaseOnce sync.Once
	releaseHandler := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseHandler)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	var stdout lines
	start := time.Now()
	_, err := client.Run(ctx, "ignore close", nil, stdout.add, nil)
	elapsed := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run() error = %v, want context.Canceled", err)
	}
	if elapsed > cancelGrace+time.Second {
		t.Errorf("Run() returned after %s, want at most about %s after the cancel", elapsed, cancelGrace)
	}

	releaseHandler()
	time.Sleep(100 * time.Millisecond)
	if got := stdout.all(); !slices.Equal(got, []string{"started"}) {
		t.Errorf("stdout = %q, want no line after Run returned", got)
	}
}
