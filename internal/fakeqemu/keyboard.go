package fakeqemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// usKeys maps a QEMU qcode to the characters it types on a US keyboard
// without and with Shift. The table is written out here, independently of
// bake's boot package, so that a test decoding the typed text checks the
// encoder instead of repeating it.
var usKeys = map[string][2]byte{
	"1": {'1', '!'}, "2": {'2', '@'}, "3": {'3', '#'}, "4": {'4', '$'}, "5": {'5', '%'},
	"6": {'6', '^'}, "7": {'7', '&'}, "8": {'8', '*'}, "9": {'9', '('}, "0": {'0', ')'},
	"minus": {'-', '_'}, "equal": {'=', '+'}, "bracket_left": {'[', '{'},
	"bracket_right": {']', '}'}, "backslash": {'\\', '|'}, "semicolon": {';', ':'},
	"apostrophe": {'\'', '"'}, "grave_accent": {'`', '~'}, "comma": {',', '<'},
	"dot": {'.', '>'}, "slash": {'/', '?'}, "spc": {' ', ' '},
}

func init() {
	for c := byte('a'); c <= 'z'; c++ {
		usKeys[string(c)] = [2]byte{c, c - 'a' + 'A'}
	}
}

// keyboard turns the key events of QMP input-send-event back into text,
// one line per Enter, as a guest's line editor reads them.
type keyboard struct {
	mu    sync.Mutex
	shift map[string]bool // Shift keys held down, by qcode
	line  []byte
}

// keyEvent is one element of input-send-event's "events" argument.
type keyEvent struct {
	Type string `json:"type"`
	Data struct {
		Down bool `json:"down"`
		Key  struct {
			Type string `json:"type"`
			Data string `json:"data"`
		} `json:"key"`
	} `json:"data"`
}

// press applies the events of one input-send-event command. It returns the
// lines that an Enter in them completed and the echo a line editor prints
// for them: each typed character, "\b \b" per backspace, CR LF per Enter.
func (k *keyboard) press(arguments json.RawMessage) (lines []string, echo string, err error) {
	var args struct {
		Events []keyEvent `json:"events"`
	}
	if err := json.Unmarshal(arguments, &args); err != nil {
		return nil, "", fmt.Errorf("invalid input-send-event arguments: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.shift == nil {
		k.shift = map[string]bool{}
	}
	var echoed strings.Builder
	for _, e := range args.Events {
		if e.Type != "key" || e.Data.Key.Type != "qcode" {
			continue
		}
		qcode, down := e.Data.Key.Data, e.Data.Down
		switch {
		case qcode == "shift" || qcode == "shift_r":
			k.shift[qcode] = down
		case !down:
		case qcode == "ret":
			lines = append(lines, string(k.line))
			k.line = k.line[:0]
			echoed.WriteString("\r\n")
		case qcode == "backspace":
			if len(k.line) > 0 {
				k.line = k.line[:len(k.line)-1]
				echoed.WriteString("\b \b")
			}
		default:
			chars, ok := usKeys[qcode]
			if !ok {
				continue // Esc, function and cursor keys type nothing
			}
			c := chars[0]
			if k.shift["shift"] || k.shift["shift_r"] {
				c = chars[1]
			}
			k.line = append(k.line, c)
			echoed.WriteByte(c)
		}
	}
	return lines, echoed.String(), nil
}

// guestHostURL matches a URL on the address QEMU's user-mode network gives
// the host, as a boot command types it.
var guestHostURL = regexp.MustCompile(`http://10\.0\.2\.2:([0-9]+)(/[^ ]*)?`)

// fetchTyped fetches every 10.0.2.2 URL in line from 127.0.0.1 on the same
// port, as an installer given that URL would through user-mode networking,
// and reports each result on the serial console.
func (vm *machine) fetchTyped(line string) {
	client := &http.Client{Timeout: 5 * time.Second}
	for _, m := range guestHostURL.FindAllStringSubmatch(line, -1) {
		port, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port) + m[2]
		resp, err := client.Get(url)
		if err != nil {
			vm.console(fmt.Sprintf("fake installer: fetching %s failed: %v", m[0], err))
			continue
		}
		resp.Body.Close()
		vm.console(fmt.Sprintf("fake installer: fetched %s: %s", m[0], resp.Status))
		vm.appendLog(FetchLog, strconv.Quote(m[0])+" "+strconv.Itoa(resp.StatusCode))
	}
}

// typed records the lines the boot command completed and, in FetchSeed
// mode, fetches the URLs in them in the background, so the QMP command that
// pressed Enter returns at once as it does in QEMU.
func (vm *machine) typed(lines []string) {
	for _, line := range lines {
		vm.appendLog(TypedLog, strconv.Quote(line))
		if vm.mode.FetchSeed && strings.Contains(line, "http://") {
			go vm.fetchTyped(line)
		}
	}
}
