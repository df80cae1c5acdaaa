package tui

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
)

const (
	// consoleWidth and consoleHeight are the size of the emulated serial
	// terminal. A guest cannot learn the size of a serial line, so installers
	// and getty assume 80x24, and the emulator keeps that size whatever the
	// dashboard's own size is.
	consoleWidth  = 80
	consoleHeight = 24

	// defaultScrollback is the number of lines kept above the screen of each
	// console. The full serial log is written to disk by the pipeline.
	defaultScrollback = 5000

	// writeChunk bounds the bytes fed to the emulator per lock. A chunk holds
	// at most writeChunk line feeds, fewer than the emulator's own scrollback
	// limit, so lines move to the ring before the emulator drops any.
	writeChunk = 4096

	// maxPending bounds console bytes waiting for the emulator. When a guest
	// writes faster than the emulator parses, the oldest waiting bytes are
	// dropped and counted, so memory stays bounded and the UI stays live.
	maxPending = 4 << 20
)

// console is one VM's serial console: a VT emulator plus a bounded ring of
// lines that scrolled off its screen. Writes are queued and parsed on a
// separate goroutine, so a guest that prints megabytes a second slows neither
// event ingestion nor rendering. A hidden console holds its writes unparsed
// until it is shown.
type console struct {
	// mu guards emu, ring and the screen cache.
	mu          sync.Mutex
	emu         *vt.Emulator
	ring        ring[string]
	screen      []string // rendered screen rows, valid while screenValid
	screenValid bool
	state       vtState // guarded by mu, like the emulator it mirrors

	version atomic.Uint64 // incremented after every parsed chunk

	// qmu guards the write queue and the worker state.
	qmu      sync.Mutex
	idle     *sync.Cond
	queue    [][]byte
	queued   int
	dropped  int64
	working  bool
	closed   bool
	reply    func([]byte) // receives terminal replies, such as cursor reports
	readerUp bool

	// hidden is set while the console is not on screen. Its output then
	// goes to held instead of the queue, as hold.go describes.
	hidden    bool
	held      heldOutput
	keepLines int // lines a trim of held keeps: the scrollback and a screen

	stop atomic.Bool // set by Close: parsing ends after the current chunk
}

func newConsole(scrollback int, reply func([]byte)) *console {
	if scrollback <= 0 {
		scrollback = defaultScrollback
	}
	c := &console{
		emu:       vt.NewEmulator(consoleWidth, consoleHeight),
		ring:      newRing[string](scrollback),
		state:     newVTState(),
		reply:     reply,
		keepLines: scrollback + consoleHeight,
	}
	c.idle = sync.NewCond(&c.qmu)
	return c
}

// Write queues p for the emulator and returns at once. It copies p. While
// the console is hidden, p is held instead, unless it contains a terminal
// query.
func (c *console) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed {
		return
	}
	if c.hidden {
		if !hasQuery(p) {
			c.held.add(p, c.keepLines)
			return
		}
		// The guest waits for the reply, so everything up to the query is
		// parsed now. A query split across two writes is not seen.
		if c.held.pending() {
			c.enqueue(c.held.take())
		}
	}
	c.enqueue(append([]byte(nil), p...))
}

// SetVisible shows or hides the console. Showing a hidden console queues
// its held output for the emulator.
func (c *console) SetVisible(visible bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed || c.hidden != visible {
		return
	}
	c.hidden = !visible
	if visible && c.held.pending() {
		c.enqueue(c.held.take())
	}
}

// enqueue adds p to the parse queue, taking ownership of it, and starts the
// worker. Callers hold qmu.
func (c *console) enqueue(p []byte) {
	if !c.readerUp {
		// The emulator writes replies to queries (cursor position, device
		// attributes) into a pipe, and that write blocks until read.
		c.readerUp = true
		go c.readReplies()
	}

	c.queue = append(c.queue, p)
	c.queued += len(p)
	c.dropOldest()
	if !c.working {
		c.working = true
		go c.drain()
	}
}

// dropOldest drops queued bytes from the front until at most maxPending
// remain. Callers hold qmu.
func (c *console) dropOldest() {
	for c.queued > maxPending && len(c.queue) > 1 {
		c.queued -= len(c.queue[0])
		c.dropped += int64(len(c.queue[0]))
		c.queue[0] = nil
		c.queue = c.queue[1:]
	}
	if excess := c.queued - maxPending; excess > 0 {
		c.queue[0] = c.queue[0][excess:]
		c.queued -= excess
		c.dropped += int64(excess)
	}
}

// drain feeds queued bytes to the emulator until the queue is empty. It
// takes the whole queue at once, so long runs of plain lines can take the
// fast path.
func (c *console) drain() {
	for {
		c.qmu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.working = false
			c.idle.Broadcast()
			c.qmu.Unlock()
			return
		}
		queue := c.queue
		c.queue, c.queued = nil, 0
		c.qmu.Unlock()

		c.feed(bytes.Join(queue, nil))
	}
}

// feed parses data, taking the fast path for long runs of plain lines.
func (c *console) feed(data []byte) {
	minRun := 2*consoleHeight + 1
	for len(data) > 0 && !c.stop.Load() {
		start, end := plainRun(data, minRun)
		if start < 0 {
			c.parse(data)
			return
		}
		c.parse(data[:start])
		if !c.fastRun(data[start:end]) {
			c.parse(data[start:end])
		}
		data = data[end:]
	}
}

// parse feeds data to the emulator in chunks of at most writeChunk bytes,
// taking the lock once per chunk, so a frame waits for one chunk at most.
func (c *console) parse(data []byte) {
	for len(data) > 0 && !c.stop.Load() {
		n := min(len(data), writeChunk)
		c.mu.Lock()
		c.parseLocked(data[:n], 0)
		c.mu.Unlock()
		c.version.Add(1)
		data = data[n:]
	}
}

// parseLocked feeds p to the emulator and moves the lines that scrolled off
// to the ring, rendered with their styles, dropping the first skipBlank of
// them if they are blank. Callers hold mu.
func (c *console) parseLocked(p []byte, skipBlank int) {
	c.state.scan(p)
	_, _ = c.emu.Write(p)
	c.screenValid = false

	sb := c.emu.Scrollback()
	if sb == nil || sb.Len() == 0 {
		return
	}
	for _, line := range sb.Lines() {
		if skipBlank > 0 && strings.TrimSpace(line.String()) == "" {
			skipBlank--
			continue
		}
		skipBlank = 0
		c.ring.push(line.Render())
	}
	sb.Clear()
}

// fastRun applies a run of at least 2h+1 plain lines as the comment at the
// top of fastpath.go describes, or parses it as usual when it turns out
// shorter. It holds the lock for the whole run, which costs about 3h
// scrolled lines, so that no frame shows the blank screen of step 2. It returns false, having changed nothing, when the emulator is in
// a state plain lines would render differently in.
func (c *console) fastRun(run []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.state.plainSafe() || c.emu.IsAltScreen() {
		return false
	}
	h := c.emu.Height()
	lines := bytes.SplitAfter(run, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	// A run can begin with the rest of a line whose start came in an
	// earlier write, so that line is parsed as usual.
	if c.emu.CursorPosition().X != 0 && len(lines) > 0 {
		c.parseLocked(lines[0], 0)
		lines = lines[1:]
		c.version.Add(1)
	}
	if len(lines) < 2*h+1 || c.emu.CursorPosition().X != 0 {
		c.parseLocked(bytes.Join(lines, nil), 0)
		c.version.Add(1)
		return true
	}
	head, middle, tail := lines[:h], lines[h:len(lines)-h], lines[len(lines)-h:]

	c.parseLocked(bytes.Join(head, nil), 0)
	p := c.state.pen
	c.parseLocked([]byte(ansi.ResetStyle+strings.Repeat("\r\n", h-1)), 0)
	for _, line := range middle {
		var rows []string
		rows, p = plainRows(p, line)
		for _, row := range rows {
			c.ring.push(row)
		}
	}
	c.parseLocked(append([]byte(p.seqs), bytes.Join(tail, nil)...), h-1)
	c.version.Add(1)
	return true
}

func (c *console) readReplies() {
	buf := make([]byte, 256)
	for {
		n, err := c.emu.Read(buf)
		if n > 0 && c.reply != nil {
			c.reply(append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			return
		}
	}
}

// Sync blocks until every queued byte has been parsed.
func (c *console) Sync() {
	c.qmu.Lock()
	for c.working {
		c.idle.Wait()
	}
	c.qmu.Unlock()
}

// Dropped returns the number of bytes skipped because the emulator fell
// behind by more than maxPending bytes, or the dashboard stalled.
func (c *console) Dropped() int64 {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.dropped
}

// addDropped counts n bytes that were dropped before reaching the console.
func (c *console) addDropped(n int64) {
	c.qmu.Lock()
	c.dropped += n
	c.qmu.Unlock()
}

// Close stops the worker after its current chunk and ends the reply reader.
func (c *console) Close() {
	c.stop.Store(true)
	c.qmu.Lock()
	c.closed = true
	c.queue = nil
	c.held = heldOutput{}
	c.qmu.Unlock()
	c.Sync()

	c.mu.Lock()
	closeReplies(c.emu)
	c.mu.Unlock()
}

// closeReplies ends the reader of the emulator's reply pipe. It closes the
// pipe rather than calling Emulator.Close, because in x/vt v0.1.0 Close
// writes a flag that a blocked Read has already read without a lock, which
// the race detector reports.
func closeReplies(emu *vt.Emulator) {
	if pw, ok := emu.InputPipe().(*io.PipeWriter); ok {
		_ = pw.Close()
	}
}

// screenRows returns the rendered rows of the screen that belong to the
// document: all rows on the alternate screen, otherwise the rows up to the
// cursor or the last non-blank row, whichever is lower. Callers hold mu.
func (c *console) screenRows() []string {
	if !c.screenValid {
		c.screen = strings.Split(c.emu.Render(), "\n")
		c.screenValid = true
	}
	if c.emu.IsAltScreen() {
		return c.screen
	}
	last := c.emu.CursorPosition().Y
	for y := len(c.screen) - 1; y > last; y-- {
		if strings.TrimSpace(ansi.Strip(c.screen[y])) != "" {
			last = y
			break
		}
	}
	return c.screen[:min(last+1, len(c.screen))]
}

// Len returns the number of lines in the console document: scrollback plus
// the used part of the screen.
func (c *console) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ring.len() + len(c.screenRows())
}

// View returns up to height lines of the document ending offset lines above
// its bottom, and the clamped offset actually used.
func (c *console) View(height, offset int) ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()

	rows := c.screenRows()
	total := c.ring.len() + len(rows)
	offset = max(0, min(offset, total-height))
	end := total - offset
	start := max(0, end-height)

	lines := make([]string, 0, end-start)
	for i := start; i < end; i++ {
		if i < c.ring.len() {
			lines = append(lines, c.ring.at(i))
		} else {
			lines = append(lines, rows[i-c.ring.len()])
		}
	}
	return lines, offset
}

// Text returns the plain text of the screen, for tests.
func (c *console) Text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.emu.String()
}

// Total returns the number of lines the document has ever had, counting
// lines dropped from the ring, so callers can tell how many lines arrived
// since they last looked.
func (c *console) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ring.dropped + int64(c.ring.len()+len(c.screenRows()))
}
