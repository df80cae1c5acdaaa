package boot

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests type into a real isolinux boot: prompt under QEMU with TCG.
// isolinux echoes typed characters to the serial port, so the serial log
// shows exactly what the guest received.

const (
	isolinuxBin     = "/usr/lib/ISOLINUX/isolinux.bin"
	isolinuxModules = "/usr/lib/syslinux/modules/bios"
)

// qmpKeyboard sends key events with QMP input-send-event, all events of
// one SendKeys call in one command.
type qmpKeyboard struct {
	conn    net.Conn
	reader  *bufio.Reader
	encoder *json.Encoder
}

var _ Keyboard = (*qmpKeyboard)(nil)

func dialQMP(t *testing.T, socket string) *qmpKeyboard {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if conn, err = net.Dial("unix", socket); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connecting to QMP at %s failed: %v", socket, err)
	}
	t.Cleanup(func() { conn.Close() })

	k := &qmpKeyboard{conn: conn, reader: bufio.NewReader(conn), encoder: json.NewEncoder(conn)}
	if _, err := k.reader.ReadBytes('\n'); err != nil {
		t.Fatalf("reading the QMP greeting failed: %v", err)
	}
	if err := k.execute("qmp_capabilities", nil); err != nil {
		t.Fatalf("QMP qmp_capabilities failed: %v", err)
	}
	return k
}

func (k *qmpKeyboard) execute(command string, arguments any) error {
	request := map[string]any{"execute": command}
	if arguments != nil {
		request["arguments"] = arguments
	}
	k.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := k.encoder.Encode(request); err != nil {
		return err
	}
	for {
		line, err := k.reader.ReadBytes('\n')
		if err != nil {
			return err
		}
		var reply struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &reply); err != nil {
			return fmt.Errorf("invalid QMP reply %q: %w", line, err)
		}
		if reply.Error != nil {
			return errors.New(reply.Error.Desc)
		}
		if reply.Return != nil {
			return nil
		}
		// An asynchronous event: keep reading.
	}
}

func (k *qmpKeyboard) SendKeys(ctx context.Context, events []KeyEvent) error {
	type keyValue struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	type keyEvent struct {
		Down bool     `json:"down"`
		Key  keyValue `json:"key"`
	}
	type inputEvent struct {
		Type string   `json:"type"`
		Data keyEvent `json:"data"`
	}
	list := make([]inputEvent, len(events))
	for i, e := range events {
		list[i] = inputEvent{Type: "key", Data: keyEvent{Down: e.Down, Key: keyValue{Type: "qcode", Data: e.QCode}}}
	}
	return k.execute("input-send-event", map[string]any{"events": list})
}

// serialLog waits for text in a file that QEMU writes the serial port to.
type serialLog struct {
	path string
}

var _ ConsoleWaiter = serialLog{}

func (s serialLog) WaitFor(ctx context.Context, text string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		data, _ := os.ReadFile(s.path)
		if strings.Contains(string(data), text) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%q did not appear on the serial console within %s", text, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s serialLog) read(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// bootIsolinux builds an ISO whose isolinux waits at boot: with its console
// on the serial port, boots it under QEMU and returns the QMP keyboard and
// the serial log.
func bootIsolinux(t *testing.T) (*qmpKeyboard, serialLog) {
	t.Helper()
	for _, binary := range []string{"qemu-system-x86_64", "xorriso"} {
		if _, err := exec.LookPath(binary); err != nil {
			t.Skipf("%s not installed: %v", binary, err)
		}
	}
	for _, file := range []string{isolinuxBin, filepath.Join(isolinuxModules, "ldlinux.c32")} {
		if _, err := os.Stat(file); err != nil {
			t.Skipf("isolinux not installed (install the isolinux and syslinux-common packages): %v", err)
		}
	}

	dir := t.TempDir()
	tree := filepath.Join(dir, "tree", "isolinux")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, isolinuxBin, filepath.Join(tree, "isolinux.bin"))
	copyFile(t, filepath.Join(isolinuxModules, "ldlinux.c32"), filepath.Join(tree, "ldlinux.c32"))
	config := "serial 0 115200\nprompt 1\ntimeout 0\n"
	if err := os.WriteFile(filepath.Join(tree, "isolinux.cfg"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "test.iso")
	runCommand(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", iso, "-b", "isolinux/isolinux.bin",
		"-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		filepath.Join(dir, "tree"))

	log := serialLog{path: filepath.Join(dir, "serial.log")}
	socket := filepath.Join(dir, "qmp.sock")
	ctx, cancel := context.WithCancel(context.Background())
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64",
		"-machine", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none",
		"-cdrom", iso, "-serial", "file:"+log.path,
		"-qmp", "unix:"+socket+",server=on,wait=off", "-no-reboot")
	var stderr strings.Builder
	qemu.Stderr = &stderr
	if err := qemu.Start(); err != nil {
		t.Fatalf("starting QEMU failed: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		qemu.Wait()
		if t.Failed() {
			t.Logf("QEMU stderr: %s", stderr.String())
		}
	})
	return dialQMP(t, socket), log
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runCommand(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", name, err, out)
	}
}

// printableASCII is every character the boot command can type.
const printableASCII = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

func TestTyperIsolinuxPrompt(t *testing.T) {
	keyboard, log := bootIsolinux(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	typer := &Typer{Keyboard: keyboard, Console: log}

	// Under TCG on a loaded host the guest sometimes stalls long enough to
	// drop keys at any pace, so the line gets three attempts. A wrong key
	// mapping fails every attempt the same way.
	const attempts = 3
	prompt := `<waitFor "boot:" 60s>`
	for attempt := 1; attempt <= attempts; attempt++ {
		name := fmt.Sprintf("try%d", attempt)
		line := name + " " + printableASCII
		p, _ := mustParse(t, prompt+strings.ReplaceAll(line, "<", "<lt>")+"<enter>")
		start := time.Now()
		if err := typer.Run(ctx, p); err != nil {
			t.Fatalf("Run failed: %v\nserial log:\n%q", err, log.read(t))
		}
		elapsed := time.Since(start)

		// Enter makes isolinux look for the kernel named by the first word,
		// which is missing, and prompt again.
		failed := "Loading " + name + "... failed: No such file or directory\r\nboot: "
		if err := log.WaitFor(ctx, failed, 30*time.Second); err != nil {
			t.Fatalf("Enter did not reach isolinux: %v\nserial log:\n%q", err, log.read(t))
		}
		// isolinux wraps the echo at 80 columns with "\r\r\n" and an erase
		// to the end of the line.
		echo := strings.ReplaceAll(log.read(t), "\r\r\n\x1b[K", "")
		if strings.Contains(echo, "boot: "+line+"\x1b[?7h\r\n") {
			t.Logf("attempt %d typed %d characters intact in %s", attempt, len(line), elapsed)
			return
		}
		t.Logf("attempt %d lost keys in %s; serial log so far:\n%q", attempt, elapsed, echo)
		prompt = ""
	}
	t.Errorf("no attempt of %d typed the line intact", attempts)
}
