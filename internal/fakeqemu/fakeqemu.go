// Package fakeqemu is a stand-in for qemu-system-x86_64 that boots in
// milliseconds, for tests of the build pipeline and the bake command. It
// reads the argv bake builds, serves QMP on the -qmp socket and prints a
// boot log on the serial console (standard output). When the -netdev option
// forwards a host port, it also runs an SSH server on that port, and exec
// requests run through /bin/sh on the host in a scratch directory.
//
// A test binary becomes the fake by calling RunIfInvoked from TestMain (or
// by registering Main as a testscript command) and putting a link named
// qemu-system-x86_64 to itself on PATH, which Install does. The environment
// variable named by EnvMode selects the behaviour; see ParseMode.
package fakeqemu

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Binary is the command name under which a test binary runs the fake.
const Binary = "qemu-system-x86_64"

// Environment variables read by the fake.
const (
	// EnvMode holds the behaviour modes, comma-separated (see ParseMode).
	EnvMode = "BAKE_FAKE_QEMU"
	// EnvDir is the state directory: logs of argv, QMP commands and SSH
	// commands, and the guest's scratch directory. Install sets it; when it
	// is empty the fake uses a new temporary directory.
	EnvDir = "BAKE_FAKE_QEMU_DIR"
)

// Files in the state directory.
const (
	ArgvLog  = "argv.log" // one line per start: the arguments, quoted
	QMPLog   = "qmp.log"  // one line per QMP command: the name and its arguments
	ExecLog  = "exec.log" // one line per SSH exec request, quoted
	GuestDir = "guest"    // working directory of commands run over SSH
	// TypedLog contains one line per Enter typed with input-send-event: the
	// text typed before it, decoded with a US layout and quoted.
	TypedLog = "typed.log"
	// FetchLog contains one line per URL fetched in FetchSeed mode: the URL as
	// typed, quoted, and the HTTP status code.
	FetchLog = "fetch.log"
)

// CrashMsg is the line the fake writes to standard error when CrashAfter
// ends it.
const CrashMsg = "qemu-system-x86_64: terminating on signal 6: simulated crash"

// Mode is the fake's behaviour. The zero value boots at once, accepts SSH
// and powers off on the guest's poweroff command.
type Mode struct {
	// SSHNever accepts TCP connections on the forwarded port and never
	// sends a byte, as QEMU's user-mode network does while the guest has
	// no sshd, so the SSH handshake hangs.
	SSHNever bool
	// CrashAfter makes the process exit with status 134 and a message on
	// standard error this long after it started. Zero disables it.
	CrashAfter time.Duration
	// IgnorePoweroff makes the poweroff command succeed without stopping
	// the guest. ACPI powerdown over QMP still works.
	IgnorePoweroff bool
	// IgnoreACPI ignores both the poweroff command and ACPI powerdown, so
	// only the QMP quit command stops the fake.
	IgnoreACPI bool
	// RebootDuringProvision reboots the guest while the first ordinary SSH
	// command runs: the connection drops without an exit status, QMP sends
	// RESET, and SSH is back after RebootDelay.
	RebootDuringProvision bool
	// SlowBoot delays the end of the boot log and the SSH server. Until
	// then, forwarded connections are accepted and closed at once.
	SlowBoot time.Duration
	// FetchSeed makes the guest fetch every http://10.0.2.2:PORT/PATH URL
	// in a line typed with input-send-event when Enter is pressed, from
	// 127.0.0.1:PORT, as an installer given that URL would.
	FetchSeed bool
	// EchoKeys prints each character typed with input-send-event on the
	// serial console, as a bootloader prompt mirrored to the serial port
	// does.
	EchoKeys bool
	// PoweroffAfter makes the guest power itself off this long after the
	// start, as an unattended installer does when it finishes: QMP sends
	// SHUTDOWN and the process exits with status 0. Zero disables it.
	PoweroffAfter time.Duration
	// PoweroffDuringProvision powers the guest off while the first
	// ordinary SSH command runs: the connection drops without an exit
	// status, QMP sends SHUTDOWN and the process exits with status 0.
	PoweroffDuringProvision bool
}

// RebootDelay is how long SSH is down during a reboot.
const RebootDelay = 300 * time.Millisecond

// ParseMode reads comma-separated modes: normal, ssh-never,
// crash-after=DURATION, ignore-poweroff, ignore-acpi,
// reboot-during-provision, slow-boot=DURATION, fetch-seed, echo-keys,
// poweroff-after=DURATION, poweroff-during-provision. The empty string is
// normal.
func ParseMode(s string) (Mode, error) {
	var m Mode
	for _, part := range strings.Split(s, ",") {
		name, value, hasValue := strings.Cut(strings.TrimSpace(part), "=")
		var err error
		switch name {
		case "", "normal":
		case "ssh-never":
			m.SSHNever = true
		case "ignore-poweroff":
			m.IgnorePoweroff = true
		case "ignore-acpi":
			m.IgnorePoweroff, m.IgnoreACPI = true, true
		case "reboot-during-provision":
			m.RebootDuringProvision = true
		case "crash-after":
			m.CrashAfter, err = parseModeDuration(name, value, hasValue)
		case "slow-boot":
			m.SlowBoot, err = parseModeDuration(name, value, hasValue)
		case "fetch-seed":
			m.FetchSeed = true
		case "echo-keys":
			m.EchoKeys = true
		case "poweroff-after":
			m.PoweroffAfter, err = parseModeDuration(name, value, hasValue)
		case "poweroff-during-provision":
			m.PoweroffDuringProvision = true
		default:
			return m, fmt.Errorf("unknown fake QEMU mode %q in %s=%q", name, EnvMode, s)
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

func parseModeDuration(name, value string, hasValue bool) (time.Duration, error) {
	if !hasValue {
		return 0, fmt.Errorf("fake QEMU mode %s needs a duration, as in %s=2s", name, name)
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("invalid duration in fake QEMU mode %s: %w", name, err)
	}
	return d, nil
}

// Main runs the fake with os.Args and exits with its status.
func Main() {
	os.Exit(Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// RunIfInvoked runs the fake and exits when the program was started under
// the name Binary; otherwise it returns at once. Call it first in TestMain.
func RunIfInvoked() {
	if filepath.Base(os.Args[0]) == Binary {
		Main()
	}
}

// Run is the fake's main function. It returns the process exit status.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	mode, err := ParseMode(os.Getenv(EnvMode))
	if err != nil {
		fmt.Fprintln(stderr, Binary+":", err)
		return 1
	}
	argv, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, Binary+":", err)
		return 1
	}
	dir := os.Getenv(EnvDir)
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fakeqemu-"); err != nil {
			fmt.Fprintln(stderr, Binary+":", err)
			return 1
		}
	}
	vm := &machine{mode: mode, args: argv, dir: dir, stdout: stdout, stderr: stderr, exit: make(chan int, 1)}
	return vm.run(args, stdin)
}

// machine is one running fake.
type machine struct {
	mode   Mode
	args   Args
	dir    string
	stdout io.Writer
	stderr io.Writer

	qmp      *qmpServer
	ssh      *sshServer
	keyboard keyboard
	exit     chan int

	logMu sync.Mutex
}

func (vm *machine) run(rawArgs []string, stdin io.Reader) int {
	if err := os.MkdirAll(filepath.Join(vm.dir, GuestDir), 0o755); err != nil {
		fmt.Fprintln(vm.stderr, Binary+":", err)
		return 1
	}
	vm.appendLog(ArgvLog, quoteAll(rawArgs))
	for _, d := range vm.args.Drives {
		if _, err := os.Stat(d); err != nil {
			fmt.Fprintf(vm.stderr, "%s: -drive file=%s: Could not open '%s': No such file or directory\n", Binary, d, d)
			return 1
		}
	}

	var err error
	if vm.qmp, err = listenQMP(vm); err != nil {
		fmt.Fprintf(vm.stderr, "%s: -qmp unix:%s: %v\n", Binary, vm.args.QMPSocket, err)
		return 1
	}
	defer vm.qmp.close()
	if vm.args.SSHPort > 0 {
		if vm.ssh, err = listenSSH(vm); err != nil {
			fmt.Fprintf(vm.stderr, "%s: -netdev %s: Could not set up host forwarding rule 'tcp:127.0.0.1:%d-:%d'\n",
				Binary, vm.args.Netdev, vm.args.SSHPort, vm.args.SSHGuestPort)
			return 1
		}
		defer vm.ssh.close()
	}

	go io.Copy(io.Discard, stdin)
	go vm.boot(vm.mode.SlowBoot)
	if vm.mode.CrashAfter > 0 {
		time.AfterFunc(vm.mode.CrashAfter, func() {
			fmt.Fprintln(vm.stderr, CrashMsg)
			vm.finish(134)
		})
	}
	if vm.mode.PoweroffAfter > 0 {
		time.AfterFunc(vm.mode.PoweroffAfter, func() { vm.powerOff("guest-shutdown", true) })
	}
	return <-vm.exit
}

// boot prints the boot log and then opens SSH.
func (vm *machine) boot(delay time.Duration) {
	vm.console("SeaBIOS (version fake-1.16.2)")
	vm.console("Booting from Hard Disk...")
	vm.console("[    0.000000] Linux version 6.1.0-fake-amd64 (fakeqemu)")
	if delay > 0 {
		time.Sleep(delay)
	}
	vm.console("[    1.234567] systemd[1]: Reached target multi-user.target")
	vm.console("fake login: ")
	if vm.ssh != nil {
		vm.ssh.setReady(true)
	}
}

// reboot drops SSH, sends RESET and boots again.
func (vm *machine) reboot() {
	if vm.ssh != nil {
		vm.ssh.setReady(false)
		vm.ssh.dropAll()
	}
	vm.qmp.event("RESET", map[string]any{"guest": true, "reason": "guest-reset"})
	vm.console("[   42.000000] reboot: Restarting system")
	go vm.boot(RebootDelay)
}

// powerOff ends the fake with the SHUTDOWN event and exit status 0, as QEMU
// does when the guest powers off (guest true) or on the quit command.
func (vm *machine) powerOff(reason string, guest bool) {
	if guest {
		vm.console("[   42.000000] reboot: Power down")
	}
	vm.qmp.event("SHUTDOWN", map[string]any{"guest": guest, "reason": reason})
	vm.finish(0)
}

// finish makes run return code. Only the first call counts.
func (vm *machine) finish(code int) {
	select {
	case vm.exit <- code:
	default:
	}
}

func (vm *machine) console(line string) {
	fmt.Fprint(vm.stdout, line+"\r\n")
}

func (vm *machine) appendLog(name, line string) {
	vm.logMu.Lock()
	defer vm.logMu.Unlock()
	f, err := os.OpenFile(filepath.Join(vm.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

func quoteAll(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = strconv.Quote(s)
	}
	return strings.Join(quoted, " ")
}
