// Package qemu starts and controls QEMU virtual machines: the argv built from
// a Config, the process lifecycle, the QMP monitor, the accelerator probe,
// key events and power events.
package qemu

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultBinary is the QEMU system emulator bake runs unless Config.Binary names another.
const DefaultBinary = "qemu-system-x86_64"

// Config describes one virtual machine. The zero value of each optional
// field selects QEMU's behaviour or a documented default.
type Config struct {
	Binary    string // default DefaultBinary
	Name      string
	Accel     string // "kvm" or "tcg"
	CPUs      int
	MemoryMiB int64
	Machine   string // default "q35" with EFI, "pc" otherwise

	Firmware *EFI // nil means SeaBIOS

	Drives []Drive
	// BootOrder is passed as -boot order=...; "cd" tries the disk first and
	// falls back to the CD, so a post-install reboot reaches the disk.
	BootOrder string

	Kernel string
	Initrd string
	Append string

	NetDevice    string // default "virtio-net-pci"
	SSHHostPort  int    // host port on 127.0.0.1 forwarded to the guest; 0 means none
	SSHGuestPort int    // default 22

	QMPSocket string
	ExtraArgs [][]string
}

// EFI names the firmware code and the per-build copy of its variable store.
type EFI struct {
	Code string
	Vars string
}

// Drive is one disk or CD attached to the machine.
type Drive struct {
	ID        string
	Path      string
	Format    string // qcow2, raw
	Interface string // virtio, ide, scsi; ignored for CDs, which are always IDE/SATA
	CDROM     bool
	ReadOnly  bool
}

// Args returns the argv (without the binary) for cfg. The serial console is
// QEMU's standard input and output so the caller can stream and log it.
func (c Config) Args() []string {
	machine := c.Machine
	if machine == "" {
		machine = "pc"
		if c.Firmware != nil {
			machine = "q35"
		}
	}
	args := []string{
		"-name", c.Name,
		"-machine", machine,
		"-accel", accelArg(c.Accel),
		"-smp", strconv.Itoa(max(c.CPUs, 1)),
		"-m", strconv.FormatInt(max(c.MemoryMiB, 64), 10) + "M",
		"-display", "none",
		"-vga", "std",
		"-serial", "stdio",
		"-monitor", "none",
		"-qmp", "unix:" + escapeOpt(c.QMPSocket) + ",server=on,wait=off",
	}
	if c.Firmware != nil {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+escapeOpt(c.Firmware.Code),
			"-drive", "if=pflash,format=raw,unit=1,file="+escapeOpt(c.Firmware.Vars))
	}
	args = append(args, c.driveArgs()...)
	if c.BootOrder != "" {
		args = append(args, "-boot", "order="+c.BootOrder)
	}
	if c.Kernel != "" {
		args = append(args, "-kernel", c.Kernel)
		if c.Initrd != "" {
			args = append(args, "-initrd", c.Initrd)
		}
		if c.Append != "" {
			args = append(args, "-append", c.Append)
		}
	}
	args = append(args, c.netArgs()...)
	for _, group := range c.ExtraArgs {
		args = append(args, group...)
	}
	return args
}

func accelArg(accel string) string {
	if accel == "tcg" {
		return "tcg,thread=multi"
	}
	return accel
}

func (c Config) driveArgs() []string {
	var args []string
	scsi := false
	for i, d := range c.Drives {
		id := d.ID
		if id == "" {
			id = "drive" + strconv.Itoa(i)
		}
		format := d.Format
		if format == "" {
			format = "raw"
		}
		if d.CDROM {
			args = append(args, "-drive", fmt.Sprintf("file=%s,id=%s,if=ide,media=cdrom,readonly=on,format=%s",
				escapeOpt(d.Path), id, format))
			continue
		}
		// cache=unsafe ignores guest flushes: package managers fsync after
		// every file, which costs minutes under emulation, and the disk is
		// discarded if QEMU does not exit cleanly. discard=unmap lets fstrim
		// in the guest free qcow2 clusters so the exported image shrinks.
		opts := fmt.Sprintf("file=%s,id=%s,format=%s,cache=unsafe,discard=unmap,detect-zeroes=unmap",
			escapeOpt(d.Path), id, format)
		if d.ReadOnly {
			opts = fmt.Sprintf("file=%s,id=%s,format=%s,readonly=on", escapeOpt(d.Path), id, format)
		}
		switch d.Interface {
		case "", "virtio":
			args = append(args, "-drive", opts+",if=virtio")
		case "ide":
			args = append(args, "-drive", opts+",if=ide")
		case "scsi":
			if !scsi {
				args = append(args, "-device", "virtio-scsi-pci,id=scsi0")
				scsi = true
			}
			args = append(args, "-drive", opts+",if=none", "-device", "scsi-hd,bus=scsi0.0,drive="+id)
		}
	}
	return args
}

func (c Config) netArgs() []string {
	netdev := "user,id=net0"
	if c.SSHHostPort > 0 {
		guest := c.SSHGuestPort
		if guest == 0 {
			guest = 22
		}
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", c.SSHHostPort, guest)
	}
	device := c.NetDevice
	if device == "" {
		device = "virtio-net-pci"
	}
	return []string{"-netdev", netdev, "-device", device + ",netdev=net0"}
}

// escapeOpt doubles commas, which QEMU's option parser reads as separators.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }
