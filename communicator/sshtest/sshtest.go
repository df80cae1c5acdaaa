// Package sshtest runs an in-process SSH server on 127.0.0.1 for tests of
// code that talks to a guest over SSH. By default exec requests run through
// /bin/sh on the host, in the test's working directory, and the sftp
// subsystem serves the host's file system.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Result is the outcome of an exec request.
type Result struct {
	Status int
	Signal string // sent as exit-signal instead of exit-status when set, as in "KILL"
	Drop   bool   // close the TCP connection without reporting an exit
}

// Server is an SSH server for one test. Set the fields before Start.
type Server struct {
	// Password and AuthorizedKey are the accepted credentials. A zero value
	// accepts none of that kind.
	Password      string
	AuthorizedKey ssh.PublicKey
	// RejectFirst rejects authentication on this many connections before
	// accepting, like an installer's sshd that runs before the real one.
	RejectFirst int
	// NoSFTP rejects the sftp subsystem, as dropbear does when no
	// sftp-server binary is installed.
	NoSFTP bool
	// IgnoreGlobalRequests leaves global requests such as keepalives
	// unanswered, like a peer that has gone away without closing the
	// connection.
	IgnoreGlobalRequests bool
	// Handle replaces running commands through /bin/sh. It may write to
	// ch and must not close it.
	Handle func(cmd string, ch ssh.Channel) Result

	// Addr and HostKey are set by Start.
	Addr    string
	HostKey ssh.Signer

	conns        atomic.Int32
	sftpSessions atomic.Int32
	mu           sync.Mutex
	commands     []string
	wg           sync.WaitGroup
}

// Start listens on a free loopback port and serves until the test ends.
func (s *Server) Start(t testing.TB) *Server {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
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

// Connections returns how many TCP connections the server accepted.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// SFTPSessions returns how many sftp subsystem sessions the server started.
func (s *Server) SFTPSessions() int { return int(s.sftpSessions.Load()) }

// Commands returns the exec requests received so far, in order.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}

func (s *Server) config(reject bool) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if reject || s.AuthorizedKey == nil || string(key.Marshal()) != string(s.AuthorizedKey.Marshal()) {
				return nil, errors.New("key rejected")
			}
			return nil, nil
		},
		PasswordCallback: func(_ ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			if reject || s.Password == "" || string(password) != s.Password {
				return nil, errors.New("password rejected")
			}
			return nil, nil
		},
	}
	cfg.AddHostKey(s.HostKey)
	return cfg
}

func (s *Server) serveConn(conn net.Conn) {
	defer conn.Close()
	n := int(s.conns.Add(1))
	sshConn, chans, reqs, err := ssh.NewServerConn(conn, s.config(n <= s.RejectFirst))
	if err != nil {
		return
	}
	defer sshConn.Close()
	if s.IgnoreGlobalRequests {
		go func() {
			for range reqs {
			}
		}()
	} else {
		go ssh.DiscardRequests(reqs)
	}

	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serveSession(conn, ch, chReqs) })
	}
}

func (s *Server) serveSession(conn net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	done := make(chan struct{})
	closed := make(chan struct{})
	started := false
	for req := range reqs {
		if started {
			req.Reply(false, nil)
			continue
		}
		switch req.Type {
		case "exec":
			var payload struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			started = true
			s.mu.Lock()
			s.commands = append(s.commands, payload.Command)
			s.mu.Unlock()
			go func() {
				defer close(done)
				s.finish(conn, ch, s.exec(payload.Command, ch, closed))
			}()
		case "subsystem":
			var payload struct{ Name string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil || payload.Name != "sftp" || s.NoSFTP {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			started = true
			s.sftpSessions.Add(1)
			go func() {
				defer close(done)
				if server, err := sftp.NewServer(ch); err == nil {
					server.Serve()
				}
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

func (s *Server) exec(command string, ch ssh.Channel, closed <-chan struct{}) Result {
	if s.Handle != nil {
		return s.Handle(command, ch)
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stdin = ch
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		io.WriteString(ch.Stderr(), err.Error()+"\n")
		return Result{Status: 127}
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
		return Result{Status: exitErr.ExitCode()}
	}
	return Result{}
}

func (s *Server) finish(conn net.Conn, ch ssh.Channel, res Result) {
	switch {
	case res.Drop:
		conn.Close()
	case res.Signal != "":
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: res.Signal}))
	default:
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(res.Status)}))
	}
	ch.Close()
}
