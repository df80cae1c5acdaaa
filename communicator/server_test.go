package communicator

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// execResult is how a test command ends.
type execResult struct {
	status int
	signal string // sent as exit-signal instead of exit-status when set
	drop   bool   // close the TCP connection without any exit report
}

// testServer is an in-process sshd on 127.0.0.1. Exec requests run through
// /bin/sh on the host unless handle is set.
type testServer struct {
	t        *testing.T
	addr     string
	hostKey  ssh.Signer
	password string
	// rejectFirst rejects authentication on this many connections.
	rejectFirst int32
	noSFTP      bool
	// ignoreGlobal leaves global requests such as keepalives unanswered,
	// like a peer that has gone away without closing the connection.
	ignoreGlobal bool
	handle      func(cmd string, ch ssh.Channel) execResult

	conns         atomic.Int32
	execs         atomic.Int32
	sftpSessions  atomic.Int32
	authorizedKey ssh.PublicKey
	wg            sync.WaitGroup
}

func newHostKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// start listens on a free loopback port and serves until the test ends.
func (s *testServer) start(t *testing.T) *testServer {
	t.Helper()
	s.t = t
	s.hostKey = newHostKey(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serveConn(conn) })
		}
	})
	return s
}

func (s *testServer) config(reject bool) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if reject || s.authorizedKey == nil || string(key.Marshal()) != string(s.authorizedKey.Marshal()) {
				return nil, errors.New("key rejected")
			}
			return nil, nil
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if reject || s.password == "" || string(pw) != s.password {
				return nil, errors.New("password rejected")
			}
			return nil, nil
		},
	}
	cfg.AddHostKey(s.hostKey)
	return cfg
}

func (s *testServer) serveConn(conn net.Conn) {
	defer conn.Close()
	n := s.conns.Add(1)
	sshConn, chans, reqs, err := ssh.NewServerConn(conn, s.config(n <= s.rejectFirst))
	if err != nil {
		return
	}
	defer sshConn.Close()
	if s.ignoreGlobal {
		go func() {
			for range reqs {
			}
		}()
	} else {
		go ssh.DiscardRequests(reqs)
	}
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serveSession(conn, ch, chReqs) })
	}
}

func (s *testServer) serveSession(conn net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	done := make(chan struct{})
	closed := make(chan struct{})
	var started bool
	for req := range reqs {
		switch {
		case req.Type == "exec" && !started:
			var payload struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			started = true
			s.execs.Add(1)
			go func() {
				defer close(done)
				s.finish(conn, ch, s.runExec(payload.Command, ch, closed))
			}()
		case req.Type == "subsystem" && string(req.Payload[4:]) == "sftp" && !s.noSFTP && !started:
			req.Reply(true, nil)
			started = true
			s.sftpSessions.Add(1)
			go func() {
				defer close(done)
				server, err := sftp.NewServer(ch)
				if err != nil {
					return
				}
				server.Serve()
				ch.Close()
			}()
		default:
			req.Reply(false, nil)
		}
	}
	// The client closed the channel, so stop a command that still runs.
	close(closed)
	ch.Close()
	if started {
		<-done
	}
}

func (s *testServer) runExec(command string, ch ssh.Channel, closed <-chan struct{}) execResult {
	if s.handle != nil {
		return s.handle(command, ch)
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stdin = ch
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		io.WriteString(ch.Stderr(), err.Error())
		return execResult{status: 127}
	}
	// A command that only sleeps would outlive its closed channel.
	stop := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-closed:
			cmd.Process.Kill()
		}
	}()
	err := cmd.Wait()
	close(stop)
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return execResult{status: exitErr.ExitCode()}
	}
	return execResult{}
}

func (s *testServer) finish(conn net.Conn, ch ssh.Channel, res execResult) {
	switch {
	case res.drop:
		conn.Close()
	case res.signal != "":
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: res.signal}))
	default:
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(res.status)}))
	}
	ch.Close()
}
