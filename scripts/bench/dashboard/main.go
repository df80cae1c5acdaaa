// Command dashboard measures the CPU time and memory of bake's dashboard
// while several builds stream their serial consoles. It replays recorded
// console logs as console events at a fixed rate per build into tui.Run,
// which draws to a pseudo-terminal of a fixed size, and prints the process's
// CPU time (getrusage) and maximum RSS as JSON.
//
//	go run ./scripts/bench/dashboard -logs ~/.cache/bake/logs -builds 4 -rate 200000 -duration 30s
//
// With -mode none the same events are read and dropped without a dashboard,
// which measures the replay's own cost. -cpuprofile FILE writes a CPU
// profile of the streaming phase for go tool pprof.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/tui"
)

type result struct {
	Mode          string  `json:"mode"`
	Builds        int     `json:"builds"`
	RatePerBuild  int     `json:"rate_bytes_per_second_per_build"`
	Seconds       float64 `json:"seconds"`
	ConsoleBytes  int64   `json:"console_bytes"`
	TerminalBytes int64   `json:"terminal_bytes"`
	Columns       int     `json:"columns"`
	Rows          int     `json:"rows"`
	UserSeconds   float64 `json:"user_seconds"`
	SystemSeconds float64 `json:"system_seconds"`
	CPUPercent    float64 `json:"cpu_percent_of_one_core"`
	MaxRSSMiB     float64 `json:"max_rss_mib"`
	GoHeapMiB     float64 `json:"go_heap_mib"`
	Load1         string  `json:"load1"`
}

func main() {
	logs := flag.String("logs", filepath.Join(os.Getenv("HOME"), ".cache/bake/logs"), "`DIR` searched for recorded console.log files")
	builds := flag.Int("builds", 4, "builds streaming at once")
	rate := flag.Int("rate", 200_000, "console bytes per second per build")
	tick := flag.Duration("interval", 10*time.Millisecond, "time between console events of one build")
	duration := flag.Duration("duration", 30*time.Second, "how long to stream")
	cols := flag.Int("cols", 200, "terminal columns")
	rows := flag.Int("rows", 60, "terminal rows")
	mode := flag.String("mode", "tui", "\"tui\" draws the dashboard, \"none\" drops the events")
	capture := flag.String("capture", "", "also write the terminal output to `FILE`")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the streaming phase to `FILE`")
	flag.Parse()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dashboard:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "dashboard: failed to start the CPU profile:", err)
			os.Exit(1)
		}
	}

	r, err := run(*logs, *builds, *rate, *tick, *duration, *cols, *rows, *mode, *capture)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
}

func run(logDir string, builds, rate int, tick, duration time.Duration, cols, rows int, mode, capture string) (result, error) {
	if mode != "tui" && mode != "none" {
		return result{}, fmt.Errorf("invalid -mode %q: use tui or none", mode)
	}
	data, err := readLogs(logDir)
	if err != nil {
		return result{}, err
	}
	names := make([]string, builds)
	for i := range names {
		names[i] = fmt.Sprintf("replay-%d", i+1)
	}

	term, err := openPTY(cols, rows, capture)
	if err != nil {
		return result{}, err
	}
	defer term.close()

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	events := make(chan event.Event, 1024)
	var consoleBytes atomic.Int64
	var feeders sync.WaitGroup
	for i, name := range names {
		feeders.Add(1)
		go func() {
			defer feeders.Done()
			replay(ctx, events, name, data, i*len(data)/builds, rate, tick, &consoleBytes)
		}()
	}
	go func() {
		feeders.Wait()
		close(events)
	}()

	before := rusage()
	start := time.Now()
	load := loadavg()
	switch mode {
	case "tui":
		err = tui.Run(ctx, events, tui.Options{Builds: names, Input: term.slave, Output: term.slave, Stop: cancel})
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			err = nil
		}
	case "none":
		for range events {
		}
	}
	elapsed := time.Since(start)
	after := rusage()
	if err != nil {
		return result{}, fmt.Errorf("tui.Run failed: %w", err)
	}

	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	user := seconds(after.Utime) - seconds(before.Utime)
	system := seconds(after.Stime) - seconds(before.Stime)
	return result{
		Mode: mode, Builds: builds, RatePerBuild: rate, Seconds: elapsed.Seconds(),
		ConsoleBytes: consoleBytes.Load(), TerminalBytes: term.bytes.Load(), Columns: cols, Rows: rows,
		UserSeconds: user, SystemSeconds: system, CPUPercent: 100 * (user + system) / elapsed.Seconds(),
		MaxRSSMiB: float64(after.Maxrss) / 1024, GoHeapMiB: float64(mem.HeapSys) / (1 << 20), Load1: load,
	}, nil
}

// readLogs concatenates every console.log under dir, in path order.
func readLogs(dir string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "console.log" {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read recorded logs in %s: %w", dir, err)
	}
	sort.Strings(paths)
	var data []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		data = append(data, b...)
	}
	if len(data) < 64<<10 {
		return nil, fmt.Errorf("only %d bytes of console logs in %s: run a few builds first, or pass -logs", len(data), dir)
	}
	return data, nil
}

// replay sends data as console events of one build at rate bytes a second,
// starting at offset and wrapping around. Each tick sends the bytes due
// since the previous one, so ticks that a busy host delays do not lower
// the rate.
func replay(ctx context.Context, events chan<- event.Event, name string, data []byte, offset, rate int,
	tick time.Duration, sent *atomic.Int64) {
	events <- event.Event{Time: time.Now(), Build: name, Kind: event.BuildStarted}
	events <- event.Event{Time: time.Now(), Build: name, Kind: event.StepStarted, Step: "boot"}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	start := time.Now()
	var due int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			target := int64(now.Sub(start).Seconds() * float64(rate))
			for due < target {
				chunk := int(min(target-due, 32<<10))
				if offset+chunk > len(data) {
					offset = 0
				}
				part := data[offset : offset+chunk]
				offset += chunk
				select {
				case events <- event.Event{Time: now, Build: name, Kind: event.Console, Data: part}:
					sent.Add(int64(len(part)))
					due += int64(chunk)
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// pty is a pseudo-terminal pair: the dashboard draws to the slave side and
// a goroutine drains and counts the master side.
//
// NOTE: the drain runs in this process, so its CPU time counts towards the
// dashboard's. It reads about 2 KB a second here, a negligible share.
type pty struct {
	master, slave *os.File
	bytes         atomic.Int64
}

func openPTY(cols, rows int, capture string) (*pty, error) {
	copyTo := io.Discard
	if capture != "" {
		f, err := os.Create(capture)
		if err != nil {
			return nil, err
		}
		copyTo = f
	}

	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open a pseudo-terminal: %w", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, fmt.Errorf("failed to unlock the pseudo-terminal: %w", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("failed to find the pseudo-terminal's number: %w", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, err
	}
	size := &unix.Winsize{Row: uint16(rows), Col: uint16(cols)}
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, size); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("failed to set the terminal size: %w", err)
	}
	p := &pty{master: master, slave: slave}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := master.Read(buf)
			p.bytes.Add(int64(n))
			copyTo.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return p, nil
}

func (p *pty) close() {
	p.slave.Close()
	p.master.Close()
}

func rusage() syscall.Rusage {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return r
}

func seconds(t syscall.Timeval) float64 {
	return float64(t.Sec) + float64(t.Usec)/1e6
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(data))[0]
}
