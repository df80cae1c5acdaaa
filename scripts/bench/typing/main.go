// Command typing measures how fast bake's boot typer types a long line into a
// real isolinux boot: prompt and whether every key arrives. It boots an ISO
// whose isolinux mirrors its prompt to the serial console (the Debian netboot
// fixture), types one line per run at each pace and compares the echo on the
// serial console with the line. It prints one JSON object per run and a
// summary per pace.
//
//	go run ./scripts/bench/typing -iso "$(scripts/fixtures.sh path netboot-iso)" \
//		-runs 20 -length 300 -paces default,30ms,5ms
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bakeimg/bake/boot"
	"github.com/bakeimg/bake/qemu"
)

// printableASCII is every character the boot command can type.
const printableASCII = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

// bootLine is shaped like the Debian netinst recipe's boot line.
const bootLine = "auto=true priority=critical url=http://10.0.2.2:8080/preseed.cfg " +
	"passwd/root-password=bake-netinst passwd/root-password-again=bake-netinst " +
	"console=ttyS0,115200n8 --- console=ttyS0,115200n8 "

// Packer's QEMU builder defaults: boot_key_interval 100 ms after every key
// down and key up, and a shifted character is sent as Shift down, key down,
// key up, Shift up.
const packerKeyInterval = 100 * time.Millisecond

type pace struct {
	Label    string        `json:"pace"`
	Interval time.Duration `json:"interval_ns"`
	Burst    int           `json:"burst"`
	Hold     time.Duration `json:"hold_ns"`
	Echo     bool          `json:"echo"`
}

type result struct {
	pace
	Run        int     `json:"run"`
	Length     int     `json:"length"`
	Echoed     int     `json:"echoed"`
	Intact     bool    `json:"intact"`
	OnlyLost   bool    `json:"only_lost"`
	Seconds    float64 `json:"seconds"`
	CharsPerS  float64 `json:"chars_per_second"`
	PackerS    float64 `json:"packer_seconds"`
	Load1      string  `json:"load1"`
	Want       string  `json:"want,omitempty"`
	Got        string  `json:"got,omitempty"`
	EnterRetry bool    `json:"enter_retry,omitempty"`
}

func main() {
	iso := flag.String("iso", "", "`PATH` of an ISO whose isolinux mirrors its menu and boot: prompt to the serial console")
	runs := flag.Int("runs", 20, "lines typed at each pace")
	length := flag.Int("length", 300, "characters per typed line")
	paces := flag.String("paces", "echo,default", "comma-separated paces: \"echo\" (wait for each key's echo, as builds do), \"default\" (the fixed default pace), or INTERVAL[/BURST[/HOLD]] as Go durations, e.g. 30ms or 15ms/4 or 10ms/1/5ms")
	out := flag.String("out", "", "also append the JSON results to `FILE`")
	flag.Parse()
	if err := run(*iso, *runs, *length, *paces, *out); err != nil {
		fmt.Fprintln(os.Stderr, "typing:", err)
		os.Exit(1)
	}
}

func run(iso string, runs, length int, paceList, out string) error {
	if iso == "" {
		return errors.New("missing -iso: pass the netboot fixture (scripts/fixtures.sh path netboot-iso)")
	}
	if length < 20 {
		return fmt.Errorf("invalid -length %d: use at least 20 characters", length)
	}
	paces, err := parsePaces(paceList)
	if err != nil {
		return err
	}
	var sink *os.File
	if out != "" {
		if sink, err = os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return err
		}
		defer sink.Close()
	}

	ctx := context.Background()
	vm, err := startVM(ctx, iso)
	if err != nil {
		return err
	}
	defer vm.stop()
	if err := vm.toPrompt(ctx); err != nil {
		return err
	}

	for _, p := range paces {
		var intact int
		var rate float64
		for i := 1; i <= runs; i++ {
			r, err := vm.typeLine(ctx, p, i, length)
			if err != nil {
				return err
			}
			if r.Intact {
				intact++
			}
			rate += r.CharsPerS
			line, _ := json.Marshal(r)
			fmt.Println(string(line))
			if sink != nil {
				fmt.Fprintln(sink, string(line))
			}
		}
		fmt.Fprintf(os.Stderr, "typing: pace %s: %d of %d lines intact, mean %.1f characters/s\n",
			p.Label, intact, runs, rate/float64(runs))
	}
	return nil
}

func parsePaces(list string) ([]pace, error) {
	var paces []pace
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "echo" {
			paces = append(paces, pace{Label: "echo", Echo: true})
			continue
		}
		if item == "default" {
			paces = append(paces, pace{Label: "default", Interval: boot.DefaultInterval, Burst: boot.DefaultBurst})
			continue
		}
		p := pace{Label: item, Burst: 1}
		fields := strings.Split(item, "/")
		var err error
		if p.Interval, err = time.ParseDuration(fields[0]); err != nil {
			return nil, fmt.Errorf("invalid pace %q: %w", item, err)
		}
		if len(fields) > 1 {
			if _, err := fmt.Sscan(fields[1], &p.Burst); err != nil || p.Burst < 1 {
				return nil, fmt.Errorf("invalid burst in pace %q: use a whole number from 1", item)
			}
		}
		if len(fields) > 2 {
			if p.Hold, err = time.ParseDuration(fields[2]); err != nil {
				return nil, fmt.Errorf("invalid hold in pace %q: %w", item, err)
			}
		}
		paces = append(paces, p)
	}
	return paces, nil
}

// console collects the serial console, serves <waitFor> and reports
// echoes.
type console struct {
	boot.EchoCounter
	mu   sync.Mutex
	data strings.Builder
}

var (
	_ boot.ConsoleWaiter = (*console)(nil)
	_ boot.Echo          = (*console)(nil)
)

func newConsole() *console { return &console{} }

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.EchoCounter.Add(len(p))
	return c.data.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data.String()
}

func (c *console) WaitFor(ctx context.Context, text string, timeout time.Duration) error {
	return c.waitCount(ctx, text, 1, timeout)
}

// waitCount polls until text appears at least n times.
func (c *console) waitCount(ctx context.Context, text string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for strings.Count(c.String(), text) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%q did not appear %d times on the serial console within %s", text, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// keyboard adapts a QEMU machine to the boot typer.
type keyboard struct{ m *qemu.Machine }

func (k keyboard) SendKeys(ctx context.Context, events []boot.KeyEvent) error {
	out := make([]qemu.KeyEvent, len(events))
	for i, e := range events {
		out[i] = qemu.KeyEvent{QCode: e.QCode, Down: e.Down}
	}
	return k.m.SendKeys(ctx, out)
}

type vm struct {
	machine *qemu.Machine
	console *console
	dir     string
}

func startVM(ctx context.Context, iso string) (*vm, error) {
	dir, err := os.MkdirTemp("", "bake-typing-")
	if err != nil {
		return nil, err
	}
	c := newConsole()
	cfg := qemu.Config{
		Name:      "typing-bench",
		Accel:     "tcg",
		CPUs:      1,
		MemoryMiB: 256,
		Drives:    []qemu.Drive{{ID: "cd0", Path: iso, CDROM: true}},
		QMPSocket: filepath.Join(dir, "qmp.sock"),
	}
	m, err := qemu.Start(ctx, cfg, false, c)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to start QEMU on %s: %w", iso, err)
	}
	return &vm{machine: m, console: c, dir: dir}, nil
}

func (v *vm) stop() {
	v.machine.Stop()
	os.RemoveAll(v.dir)
}

func (v *vm) press(ctx context.Context, command string) error {
	p, _, err := boot.Parse(command)
	if err != nil {
		return err
	}
	t := &boot.Typer{Keyboard: keyboard{v.machine}, Console: v.console}
	return t.Run(ctx, p)
}

// toPrompt leaves the isolinux menu for the boot: prompt.
func (v *vm) toPrompt(ctx context.Context) error {
	menus := strings.Count(v.console.String(), "installer menu")
	prompts := strings.Count(v.console.String(), "boot: ")
	if err := v.console.waitCount(ctx, "installer menu", max(menus, 1), 3*time.Minute); err != nil {
		return err
	}
	for attempt := 0; attempt < 5; attempt++ {
		if err := v.press(ctx, "<esc>"); err != nil {
			return err
		}
		if v.console.waitCount(ctx, "boot: ", prompts+1, 10*time.Second) == nil {
			return nil
		}
	}
	return fmt.Errorf("isolinux did not show boot: after Esc; serial console:\n%q", tail(v.console.String(), 2000))
}

// testLine returns a line of n characters that starts with a word naming
// no kernel, then a netinst-like boot line and every printable character.
func testLine(label string, run, n int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "r%02d-%s ", run, strings.NewReplacer("/", "-", ".", "-").Replace(label))
	for sb.Len() < n {
		sb.WriteString(bootLine)
		sb.WriteString(printableASCII)
		sb.WriteString(" ")
	}
	return sb.String()[:n]
}

func (v *vm) typeLine(ctx context.Context, p pace, run, n int) (result, error) {
	line := testLine(p.Label, run, n)
	prog, _, err := boot.Parse(strings.ReplaceAll(line, "<", "<lt>"))
	if err != nil {
		return result{}, fmt.Errorf("parsing the test line failed: %w", err)
	}
	typer := &boot.Typer{Keyboard: keyboard{v.machine}, Console: v.console, Interval: p.Interval, Burst: p.Burst, Hold: p.Hold}
	if p.Echo {
		typer.Echo = v.console
	}

	before := v.console.String()
	prompts := strings.Count(before, "boot: ")
	load := loadavg()
	start := time.Now()
	if err := typer.Run(ctx, prog); err != nil {
		return result{}, fmt.Errorf("typing run %d at %s failed: %w", run, p.Label, err)
	}
	elapsed := time.Since(start)

	// Let isolinux echo the last keys, then press Enter: it looks for a
	// kernel named by the first word, fails and returns to its menu or
	// prompt.
	time.Sleep(500 * time.Millisecond)
	r := result{pace: p, Run: run, Length: len(line), Seconds: elapsed.Seconds(),
		CharsPerS: float64(len(line)) / elapsed.Seconds(), PackerS: packerSeconds(line), Load1: load}
	echo := v.echo(prompts)
	if err := v.press(ctx, "<enter>"); err != nil {
		return result{}, err
	}
	if err := v.backToPrompt(ctx, before, &r); err != nil {
		return result{}, err
	}

	r.Echoed = len(echo)
	r.Intact = echo == line
	r.OnlyLost = !r.Intact && isSubsequence(echo, line)
	if !r.Intact {
		r.Want, r.Got = line, echo
	}
	return r, nil
}

// echo returns what isolinux echoed after prompt number prompts. isolinux
// wraps the echo at 80 columns with "\r\r\n" and an erase to the end of
// the line.
func (v *vm) echo(prompts int) string {
	output := strings.ReplaceAll(v.console.String(), "\r\r\n\x1b[K", "")
	segments := strings.Split(output, "boot: ")
	if len(segments) <= prompts {
		return ""
	}
	echo, _, _ := strings.Cut(segments[prompts], "\x1b[?7h")
	return echo
}

// backToPrompt waits for isolinux to show its menu or prompt again after
// Enter, presses Enter once more when it was lost, and Esc at the menu.
func (v *vm) backToPrompt(ctx context.Context, before string, r *result) error {
	menus := strings.Count(before, "installer menu")
	prompts := strings.Count(before, "boot: ")
	for attempt := 0; attempt < 2; attempt++ {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			now := v.console.String()
			if strings.Count(now, "installer menu") > menus {
				return v.toPrompt(ctx)
			}
			if strings.Count(now, "boot: ") > prompts {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		r.EnterRetry = true
		if err := v.press(ctx, "<enter>"); err != nil {
			return err
		}
	}
	return fmt.Errorf("isolinux showed neither its menu nor boot: after Enter; serial console:\n%q",
		tail(v.console.String(), 2000))
}

// packerSeconds is the time Packer's default pacing needs to type line and
// Enter: 100 ms after each key event, four events for a shifted character.
func packerSeconds(line string) float64 {
	events := 2 // Enter
	for i := 0; i < len(line); i++ {
		events += 2
		if shifted(line[i]) {
			events += 2
		}
	}
	return (time.Duration(events) * packerKeyInterval).Seconds()
}

func shifted(c byte) bool {
	return c >= 'A' && c <= 'Z' || strings.IndexByte("~!@#$%^&*()_+{}|:\"<>?", c) >= 0
}

func isSubsequence(got, want string) bool {
	i := 0
	for j := 0; i < len(got) && j < len(want); j++ {
		if got[i] == want[j] {
			i++
		}
	}
	return i == len(got)
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(data))[0]
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
