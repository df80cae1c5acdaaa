package fakeqemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Version is the QEMU version the fake reports over QMP.
var Version = struct{ Major, Minor, Micro int }{8, 2, 2}

// qmpServer accepts QMP connections on a unix socket. Each connection gets
// the greeting, command responses and every event sent after it connected.
type qmpServer struct {
	vm *machine
	ln net.Listener

	mu    sync.Mutex
	conns map[*qmpConn]bool
}

type qmpConn struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (c *qmpConn) send(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enc.Encode(v)
}

func listenQMP(vm *machine) (*qmpServer, error) {
	os.Remove(vm.args.QMPSocket)
	ln, err := net.Listen("unix", vm.args.QMPSocket)
	if err != nil {
		return nil, err
	}
	s := &qmpServer{vm: vm, ln: ln, conns: map[*qmpConn]bool{}}
	go s.accept()
	return s, nil
}

func (s *qmpServer) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.serve(conn)
	}
}

func (s *qmpServer) close() {
	s.ln.Close()
	os.Remove(s.vm.args.QMPSocket)
}

// event sends a QMP event to every connected client.
func (s *qmpServer) event(name string, data map[string]any) {
	now := time.Now()
	msg := map[string]any{
		"event":     name,
		"data":      data,
		"timestamp": map[string]int64{"seconds": now.Unix(), "microseconds": int64(now.Nanosecond() / 1000)},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.send(msg)
	}
}

type qmpCommand struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	ID        any             `json:"id,omitempty"`
}

func (s *qmpServer) serve(conn net.Conn) {
	defer conn.Close()
	c := &qmpConn{enc: json.NewEncoder(conn)}
	c.send(map[string]any{"QMP": map[string]any{
		"version": map[string]any{
			"qemu":    map[string]int{"major": Version.Major, "minor": Version.Minor, "micro": Version.Micro},
			"package": "fakeqemu",
		},
		"capabilities": []string{"oob"},
	}})
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()

	scanner := bufio.NewScanner(conn)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		var cmd qmpCommand
		if err := json.Unmarshal(scanner.Bytes(), &cmd); err != nil {
			c.send(qmpError(nil, "GenericError", "JSON parse error, "+err.Error()))
			continue
		}
		s.vm.appendLog(QMPLog, cmd.Execute+" "+string(cmd.Arguments))
		s.handle(c, cmd)
	}
}

func (s *qmpServer) handle(c *qmpConn, cmd qmpCommand) {
	reply := func(v any) {
		msg := map[string]any{"return": v}
		if cmd.ID != nil {
			msg["id"] = cmd.ID
		}
		c.send(msg)
	}
	switch cmd.Execute {
	case "qmp_capabilities", "send-key", "eject", "stop", "cont":
		reply(map[string]any{})
	case "input-send-event":
		lines, echo, err := s.vm.keyboard.press(cmd.Arguments)
		if err != nil {
			c.send(qmpError(cmd.ID, "GenericError", err.Error()))
			return
		}
		if s.vm.mode.EchoKeys && echo != "" {
			fmt.Fprint(s.vm.stdout, echo)
		}
		s.vm.typed(lines)
		reply(map[string]any{})
	case "query-version":
		reply(map[string]any{
			"qemu":    map[string]int{"major": Version.Major, "minor": Version.Minor, "micro": Version.Micro},
			"package": "fakeqemu",
		})
	case "query-status":
		reply(map[string]any{"status": "running", "running": true, "singlestep": false})
	case "system_reset":
		reply(map[string]any{})
		go s.vm.reboot()
	case "system_powerdown":
		reply(map[string]any{})
		s.event("POWERDOWN", map[string]any{})
		if !s.vm.mode.IgnoreACPI {
			// A guest takes a moment to react to the power button.
			time.AfterFunc(50*time.Millisecond, func() { s.vm.powerOff("guest-shutdown", true) })
		}
	case "quit":
		reply(map[string]any{})
		s.vm.powerOff("host-qmp-quit", false)
	default:
		c.send(qmpError(cmd.ID, "CommandNotFound", "The command "+cmd.Execute+" has not been found"))
	}
}

func qmpError(id any, class, desc string) map[string]any {
	msg := map[string]any{"error": map[string]any{"class": class, "desc": desc}}
	if id != nil {
		msg["id"] = id
	}
	return msg
}
