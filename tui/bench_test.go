package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/bakeimg/bake/event"
)

// bootLog returns about size bytes of serial output shaped like a Linux
// boot: timestamped kernel lines, some with colour, ending in CR LF.
func bootLog(size int) []byte {
	var sb strings.Builder
	for i := 0; sb.Len() < size; i++ {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&sb, "[\x1b[0;32m  OK  \x1b[0m] Started unit-%d.service - Example Service %d.\r\n", i, i)
		case 5:
			fmt.Fprintf(&sb, "\x1b[1;31mfailed\x1b[0m to probe device %d, retrying\r\n", i)
		default:
			fmt.Fprintf(&sb, "[%6d.%06d] pci 0000:00:%02x.0: reg 0x10: [mem 0xfeb%05x-0xfeb%05x]\r\n",
				i/1000, i%1000000, i%32, i, i+0xfff)
		}
	}
	return []byte(sb.String())
}

// BenchmarkIngest feeds 1 MiB of console output to each of four builds in
// 4 KiB events, applying 16 events per build per batch as one tick would,
// and renders a frame after every batch. ns/frame is the time spent in
// View, and MB/s counts all console bytes until the selected console has
// parsed its share. The other three consoles are hidden and hold their
// output, as they do in the dashboard.
func BenchmarkIngest(b *testing.B) {
	const (
		consoles  = 4
		perBuild  = 1 << 20
		eventSize = 4 << 10
		perBatch  = 16
	)
	data := bootLog(perBuild)[:perBuild]
	names := []string{"debian-12", "ubuntu-24", "alpine-3", "fedora-41"}

	b.ReportAllocs()
	b.ResetTimer()
	var frames int
	var viewTime time.Duration
	start := time.Now()
	for range b.N {
		m := newModel(Options{Builds: names})
		m.now = func() time.Time { return t0 }
		m.loadavg = func() string { return "0.50 0.40 0.30" }
		m.Update(tea.WindowSizeMsg{Width: 200, Height: 60})
		m.send(started(names[0], 0), started(names[1], 0), started(names[2], 0), started(names[3], 0))

		for off := 0; off < perBuild; off += eventSize * perBatch {
			var batch []event.Event
			for _, name := range names {
				for i := off; i < min(off+eventSize*perBatch, perBuild); i += eventSize {
					batch = append(batch, event.Event{Build: name, Kind: event.Console, Data: data[i:min(i+eventSize, perBuild)]})
				}
			}
			m.Update(batchMsg{events: batch})

			frameStart := time.Now()
			_ = m.View()
			viewTime += time.Since(frameStart)
			frames++
		}
		for _, bl := range m.builds {
			bl.console.Sync()
		}
		m.close()
	}
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(viewTime.Nanoseconds())/float64(frames), "ns/frame")
	b.ReportMetric(float64(consoles*perBuild*b.N)/elapsed.Seconds()/1e6, "MB/s")
}
