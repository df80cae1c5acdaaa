package fakeqemu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Args are the QEMU command-line options the fake uses. ParseArgs accepts
// and ignores all others.
type Args struct {
	Name         string
	QMPSocket    string   // from -qmp unix:PATH,...
	Netdev       string   // the -netdev value, as given
	SSHPort      int      // host port of the hostfwd rule; 0 when there is none
	SSHGuestPort int      // guest port of the hostfwd rule
	SerialStdio  bool     // -serial stdio
	Drives       []string // file= paths of -drive options, pflash included
}

// flagsWithoutValue are the QEMU options that take no argument and that a
// recipe's vm.qemu_args may plausibly add.
var flagsWithoutValue = map[string]bool{
	"-S": true, "-no-reboot": true, "-no-shutdown": true, "-nodefaults": true,
	"-nographic": true, "-enable-kvm": true, "-snapshot": true,
}

// ParseArgs reads the options bake passes to QEMU. A missing -qmp socket
// is an error, because bake always requests one.
func ParseArgs(args []string) (Args, error) {
	var a Args
	for i := 0; i < len(args); i++ {
		opt := args[i]
		if !strings.HasPrefix(opt, "-") {
			return a, fmt.Errorf("%s: invalid argument: options start with '-'", opt)
		}
		if flagsWithoutValue[opt] {
			continue
		}
		if i+1 >= len(args) {
			return a, fmt.Errorf("%s: requires an argument", opt)
		}
		value := args[i+1]
		i++
		var err error
		switch opt {
		case "-name":
			a.Name = value
		case "-qmp":
			a.QMPSocket, err = parseQMP(value)
		case "-netdev":
			a.Netdev = value
			a.SSHPort, a.SSHGuestPort, err = parseHostFwd(value)
		case "-serial":
			a.SerialStdio = value == "stdio"
		case "-drive":
			if file := optionValue(value, "file"); file != "" {
				a.Drives = append(a.Drives, file)
			}
		}
		if err != nil {
			return a, fmt.Errorf("%s %s: %w", opt, value, err)
		}
	}
	if a.QMPSocket == "" {
		return a, errors.New("no -qmp unix:PATH option: the fake needs a QMP socket")
	}
	return a, nil
}

func parseQMP(value string) (string, error) {
	parts := splitOptions(value)
	path, ok := strings.CutPrefix(parts[0], "unix:")
	if !ok || path == "" {
		return "", errors.New("only unix:PATH QMP sockets are supported")
	}
	return path, nil
}

// parseHostFwd returns the ports of a hostfwd=tcp:127.0.0.1:HOST-:GUEST rule.
func parseHostFwd(value string) (host, guest int, err error) {
	rule := optionValue(value, "hostfwd")
	if rule == "" {
		return 0, 0, nil
	}
	rest, ok := strings.CutPrefix(rule, "tcp:")
	if !ok {
		return 0, 0, fmt.Errorf("invalid hostfwd %q: only tcp rules are supported", rule)
	}
	hostPart, guestPart, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, fmt.Errorf("invalid hostfwd %q: missing '-' between host and guest", rule)
	}
	host, err = lastPort(hostPart)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid host port in hostfwd %q: %w", rule, err)
	}
	guest, err = lastPort(guestPart)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid guest port in hostfwd %q: %w", rule, err)
	}
	return host, guest, nil
}

func lastPort(addr string) (int, error) {
	i := strings.LastIndex(addr, ":")
	return strconv.Atoi(addr[i+1:])
}

// optionValue returns the value of key in a QEMU option list such as
// "file=a.qcow2,if=virtio".
func optionValue(value, key string) string {
	for _, part := range splitOptions(value) {
		if v, ok := strings.CutPrefix(part, key+"="); ok {
			return v
		}
	}
	return ""
}

// splitOptions splits at single commas; QEMU reads ",," as a literal comma.
func splitOptions(value string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(value); i++ {
		if value[i] != ',' {
			cur.WriteByte(value[i])
			continue
		}
		if i+1 < len(value) && value[i+1] == ',' {
			cur.WriteByte(',')
			i++
			continue
		}
		parts = append(parts, cur.String())
		cur.Reset()
	}
	return append(parts, cur.String())
}
