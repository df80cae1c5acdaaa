package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a fake qemu-system-x86_64: when
// BAKE_FAKE_QEMU is set it speaks QMP on the -qmp socket, prints a console
// banner on stdout, and behaves as the variable's value selects.
func TestMain(m *testing.M) {
	if mode := os.Getenv("BAKE_FAKE_QEMU"); mode != "" {
		os.Exit(fakeQEMU(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// installFakeQEMU puts a qemu-system-x86_64 link to the test binary first
// on PATH.
func installFakeQEMU(t *testing.T, mode string) string {
	t.Helper()
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, DefaultBinary)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("BAKE_FAKE_QEMU", mode)
	log := filepath.Join(dir, "commands.log")
	t.Setenv("BAKE_FAKE_QEMU_LOG", log)
	return log
}

func fakeQEMU(mode string, args []string) int {
	if mode == "hang" {
		select {}
	}
	var socket string
	for i, a := range args {
		if a == "-qmp" && i+1 < len(args) {
			socket = strings.TrimPrefix(strings.SplitN(args[i+1], ",", 2)[0], "unix:")
		}
		if mode == "hostfwd-busy" && strings.Contains(a, "hostfwd=") {
			fmt.Fprintln(os.Stderr, "qemu-system-x86_64: Could not set up host forwarding rule 'tcp:127.0.0.1:1-:22'")
			return 1
		}
	}
	if mode == "exit-at-start" {
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: -drive file=missing.qcow2: Could not open 'missing.qcow2'")
		return 1
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake qemu:", err)
		return 1
	}
	fmt.Println("SeaBIOS (fake)")
	fmt.Println("login:")
	if mode == "crash" {
		go func() {
			time.Sleep(300 * time.Millisecond)
			fmt.Fprintln(os.Stderr, "qemu: fatal: simulated crash")
			os.Exit(134)
		}()
	}
	conn, err := l.Accept()
	if err != nil {
		return 1
	}
	logFile, _ := os.OpenFile(os.Getenv("BAKE_FAKE_QEMU_LOG"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	enc := json.NewEncoder(conn)
	enc.Encode(map[string]any{"QMP": map[string]any{"version": map[string]any{
		"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}, "package": ""}, "capabilities": []string{}}})
	scanner := bufio.NewScanner(conn)
	for scanner.Scan() {
		var cmd struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		json.Unmarshal(scanner.Bytes(), &cmd)
		if logFile != nil {
			fmt.Fprintf(logFile, "%s %s\n", cmd.Execute, cmd.Arguments)
		}
		switch cmd.Execute {
		case "query-version":
			enc.Encode(map[string]any{"return": map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}, "package": " (fake)"}})
		case "system_powerdown":
			enc.Encode(map[string]any{"return": map[string]any{}})
			if mode != "ignore-acpi" {
				enc.Encode(map[string]any{"event": "POWERDOWN", "data": map[string]any{}})
				enc.Encode(map[string]any{"event": "SHUTDOWN", "data": map[string]any{"guest": true, "reason": "guest-shutdown"}})
				return 0
			}
		case "quit":
			enc.Encode(map[string]any{"return": map[string]any{}})
			enc.Encode(map[string]any{"event": "SHUTDOWN", "data": map[string]any{"guest": false, "reason": "host-qmp-quit"}})
			return 0
		case "no-such-command":
			enc.Encode(map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}})
		default:
			enc.Encode(map[string]any{"return": map[string]any{}})
		}
	}
	return 0
}
