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

// Received implements Echo with the log file's size.
func (s serialLog) Received() int64 {
	info, err := os.Stat(s.path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// WaitBeyond implements Echo by polling the log file's size.
func (s serialLog) WaitBeyond(ctx context.Context, n int64, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		if s.Received() > n {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return s.Received() > n
}

var _ Echo = serialLog{}

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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	typer := &Typer{Keyboard: keyboard, Console: log}
	if err := log.WaitFor(ctx, "boot: ", time.Minute); err != nil {
		t.Fatalf("isolinux did not prompt: %v", err)
	}

	// Under TCG on a loaded host the guest sometimes stalls long enough to
	// drop keys at any pace, so the line gets several attempts. A wrong key
	// mapping fails every attempt.
	const attempts = 5
	intact := false
	for attempt := 1; attempt <= attempts && !intact; attempt++ {
		line := fmt.Sprintf("try%d %s", attempt, printableASCII)
		echo, elapsed := typeLine(ctx, t, typer, log, line)
		intact = echo == line
		switch {
		case intact:
			t.Logf("attempt %d: the line arrived intact in %s", attempt, elapsed)
		case isSubsequence(echo, line):
			t.Logf("attempt %d: %d of %d characters arrived in %s", attempt, len(echo), len(line), elapsed)
		default:
			// A dropped Shift release shifts the keys after it.
			t.Logf("attempt %d: wrong characters arrived in %s\n want: %q\n  got: %q", attempt, elapsed, line, echo)
		}
	}
	if !intact {
		t.Errorf("no attempt of %d typed the line intact", attempts)
	}
}

// With echo pacing, each key waits for isolinux to read it, so no key is
// lost however the host's load stalls the guest, and every line must
// arrive intact on its first attempt.
func TestTyperIsolinuxEchoPacing(t *testing.T) {
	keyboard, log := bootIsolinux(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := log.WaitFor(ctx, "boot: ", time.Minute); err != nil {
		t.Fatalf("isolinux did not prompt: %v", err)
	}
	typer := &Typer{Keyboard: keyboard, Console: log, Echo: log}
	for i := 1; i <= 3; i++ {
		line := fmt.Sprintf("echo%d %s %s", i, printableASCII, printableASCII)
		echo, elapsed := typeLine(ctx, t, typer, log, line)
		if echo != line {
			t.Errorf("line %d arrived damaged in %s\n want: %q\n  got: %q", i, elapsed, line, echo)
			continue
		}
		t.Logf("line %d: %d characters intact in %s, %.0f characters/s", i, len(line), elapsed, float64(len(line))/elapsed.Seconds())
	}
}

// typeLine types line and Enter at the isolinux prompt and returns what
// isolinux echoed.
func typeLine(ctx context.Context, t *testing.T, typer *Typer, log serialLog, line string) (string, time.Duration) {
	t.Helper()
	prompts := strings.Count(log.read(t), "boot: ")
	p, _ := mustParse(t, strings.ReplaceAll(line, "<", "<lt>")+"<enter>")
	start := time.Now()
	if err := typer.Run(ctx, p); err != nil {
		t.Fatalf("Run failed: %v\nserial log:\n%q", err, log.read(t))
	}
	elapsed := time.Since(start)

	// Enter makes isolinux look for a kernel named by the first word, which
	// is missing, and prompt again. A lost Enter is pressed once more.
	if !waitPrompts(log, prompts+1, 10*time.Second) {
		enter, _ := mustParse(t, "<enter>")
		if err := typer.Run(ctx, enter); err != nil {
			t.Fatalf("Run failed: %v", err)
		}
		if !waitPrompts(log, prompts+1, 20*time.Second) {
			t.Fatalf("isolinux did not prompt again after Enter\nserial log:\n%q", log.read(t))
		}
	}

	// isolinux wraps the echo at 80 columns with "\r\r\n" and an erase to
	// the end of the line, and ends it with "\x1b[?7h".
	output := strings.ReplaceAll(log.read(t), "\r\r\n\x1b[K", "")
	segments := strings.Split(output, "boot: ")
	echo, _, _ := strings.Cut(segments[prompts], "\x1b[?7h")
	return echo, elapsed
}

// waitPrompts polls the serial log until it shows n isolinux prompts.
func waitPrompts(log serialLog, n int, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		data, _ := os.ReadFile(log.path)
		if strings.Count(string(data), "boot: ") >= n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// isSubsequence reports whether every character of got appears in want in
// the same order, with gaps allowed.
func isSubsequence(got, want string) bool {
	i := 0
	for j := 0; i < len(got) && j < len(want); j++ {
		if got[i] == want[j] {
			i++
		}
	}
	return i == len(got)
}
