package fakeqemu

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// sshServer is the guest's sshd as seen through QEMU's host forwarding. It
// accepts every public key and every password.
type sshServer struct {
	vm     *machine
	ln     net.Listener
	config *ssh.ServerConfig

	mu          sync.Mutex
	ready       bool
	interrupted bool // an ordinary command was interrupted by a mode
	conns       map[net.Conn]bool
	running     map[*exec.Cmd]bool
}

func listenSSH(vm *machine) (*sshServer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(vm.args.SSHPort)))
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil },
		PasswordCallback:  func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return nil, nil },
		ServerVersion:     "SSH-2.0-fakeqemu",
	}
	cfg.AddHostKey(hostKey)
	s := &sshServer{vm: vm, ln: ln, config: cfg, conns: map[net.Conn]bool{}, running: map[*exec.Cmd]bool{}}
	go s.accept()
	return s, nil
}

func (s *sshServer) setReady(ready bool) {
	s.mu.Lock()
	s.ready = ready
	s.mu.Unlock()
}

func (s *sshServer) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		ready := s.ready
		s.conns[conn] = true
		s.mu.Unlock()
		switch {
		case s.vm.mode.SSHNever:
			// Leave the connection open and silent, like QEMU's user-mode
			// network before the guest's sshd runs.
		case !ready:
			s.forget(conn)
			conn.Close()
		default:
			go s.serveConn(conn)
		}
	}
}

func (s *sshServer) forget(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
}

// dropAll closes every connection and kills every command, as a guest
// reset does.
func (s *sshServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for conn := range s.conns {
		conn.Close()
	}
	for cmd := range s.running {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (s *sshServer) close() {
	s.ln.Close()
	s.dropAll()
}

func (s *sshServer) serveConn(conn net.Conn) {
	defer s.forget(conn)
	defer conn.Close()
	sshConn, chans, reqs, err := ssh.NewServerConn(conn, s.config)
	if err != nil {
		return
	}
	defer sshConn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.serveSession(ch, chReqs)
	}
}

// session is one SSH session channel.
type session struct {
	ch      ssh.Channel
	mu      sync.Mutex
	cmd     *exec.Cmd
	started bool
}

func (s *sshServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	sess := &session{ch: ch}
	for req := range reqs {
		switch req.Type {
		case "env":
			req.Reply(true, nil)
		case "exec":
			var payload struct{ Command string }
			if sess.started || ssh.Unmarshal(req.Payload, &payload) != nil {
				req.Reply(false, nil)
				continue
			}
			sess.started = true
			req.Reply(true, nil)
			go s.exec(sess, payload.Command)
		case "subsystem":
			var payload struct{ Name string }
			if sess.started || ssh.Unmarshal(req.Payload, &payload) != nil || payload.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			sess.started = true
			req.Reply(true, nil)
			go s.sftp(ch)
		case "signal":
			sess.kill()
			req.Reply(true, nil)
		default:
			req.Reply(false, nil)
		}
	}
	// The client closed the channel; a command that still runs would
	// otherwise outlive it.
	sess.kill()
	ch.Close()
}

func (sess *session) kill() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.cmd != nil && sess.cmd.Process != nil {
		syscall.Kill(-sess.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (s *sshServer) sftp(ch ssh.Channel) {
	defer ch.Close()
	server, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(filepath.Join(s.vm.dir, GuestDir)))
	if err != nil {
		return
	}
	server.Serve()
}

// poweroffCommands are the shutdown commands the fake obeys.
var poweroffCommands = map[string]bool{
	"poweroff": true, "sudo -n poweroff": true, "sudo poweroff": true,
	"shutdown -h now": true, "sudo -n shutdown -h now": true, "systemctl poweroff": true,
}

var rebootCommands = map[string]bool{
	"reboot": true, "sudo -n reboot": true, "sudo reboot": true, "systemctl reboot": true,
}

func (s *sshServer) exec(sess *session, command string) {
	s.vm.appendLog(ExecLog, strconv.Quote(command))
	line := strings.TrimSpace(command)
	switch {
	case poweroffCommands[line]:
		exitStatus(sess.ch, 0)
		if !s.vm.mode.IgnorePoweroff {
			time.AfterFunc(50*time.Millisecond, func() { s.vm.powerOff("guest-shutdown", true) })
		}
	case rebootCommands[line]:
		exitStatus(sess.ch, 0)
		time.AfterFunc(50*time.Millisecond, s.vm.reboot)
	case strings.HasPrefix(line, "fstrim"):
		io.WriteString(sess.ch, "/: 0 B (0 bytes) trimmed on /dev/vda1\n")
		exitStatus(sess.ch, 0)
	case s.takeFirstCommand(s.vm.mode.RebootDuringProvision):
		// The guest resets while the command runs: no exit status.
		s.vm.reboot()
	case s.takeFirstCommand(s.vm.mode.PoweroffDuringProvision):
		// The guest powers off while the command runs: no exit status,
		// and the process exits, which drops the connection.
		s.vm.powerOff("guest-shutdown", true)
	default:
		exitStatus(sess.ch, s.shell(sess, command))
	}
}

// takeFirstCommand reports whether enabled is set and no ordinary command
// ran before, so that RebootDuringProvision or PoweroffDuringProvision
// interrupts only the first one.
func (s *sshServer) takeFirstCommand(enabled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !enabled || s.interrupted {
		return false
	}
	s.interrupted = true
	return true
}

// shell runs command through /bin/sh in the guest directory and returns
// its exit status.
func (s *sshServer) shell(sess *session, command string) int {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = filepath.Join(s.vm.dir, GuestDir)
	cmd.Stdin = sess.ch
	cmd.Stdout = sess.ch
	cmd.Stderr = sess.ch.Stderr()
	cmd.WaitDelay = 2 * time.Second
	// A process group lets a signal request or a reset stop the command's
	// children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sess.mu.Lock()
	err := cmd.Start()
	if err == nil {
		sess.cmd = cmd
	}
	sess.mu.Unlock()
	if err != nil {
		io.WriteString(sess.ch.Stderr(), err.Error()+"\n")
		return 127
	}
	s.mu.Lock()
	s.running[cmd] = true
	s.mu.Unlock()

	err = cmd.Wait()
	s.mu.Lock()
	delete(s.running, cmd)
	s.mu.Unlock()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal())
		}
		return exitErr.ExitCode()
	}
	return 0
}

func exitStatus(ch ssh.Channel, status int) {
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
	ch.Close()
}
