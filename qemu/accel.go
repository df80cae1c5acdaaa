package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ProbeResult is the outcome of checking whether KVM works on this host.
type ProbeResult struct {
	KVM    bool   `json:"kvm"`
	Reason string `json:"reason"` // reason KVM is unusable, empty when it works
	Kernel string `json:"kernel"` // the kernel booted by the check
	Cached bool   `json:"-"`
}

// ProbeOptions configures ProbeKVM.
type ProbeOptions struct {
	Binary string
	// Kernels are candidate Linux kernels for the boot check, tried in order
	// after $BAKE_PROBE_KERNEL and the host's own.
	Kernels []string
	// Timeout bounds the boot check. A working KVM reaches the kernel's
	// panic at a missing root file system in about a second.
	Timeout time.Duration
	// CacheDir stores the result per host boot; empty disables caching.
	CacheDir string
}

// ProbeKVM checks that KVM can really run a guest kernel. Opening /dev/kvm
// is not enough: under nested virtualisation here QEMU starts with
// -accel kvm and then hangs as soon as the guest kernel runs, printing
// nothing. So the check boots a Linux kernel with no root file system and
// waits, with a deadline, for QEMU to exit after the kernel panics.
func ProbeKVM(ctx context.Context, opts ProbeOptions) ProbeResult {
	if err := kvmDeviceUsable(); err != nil {
		return ProbeResult{Reason: err.Error()}
	}
	bin, err := LookBinary(opts.Binary)
	if err != nil {
		return ProbeResult{Reason: err.Error()}
	}
	kernel := findProbeKernel(opts.Kernels)
	if kernel == "" {
		return ProbeResult{Reason: "no Linux kernel found to boot for the KVM check (set BAKE_PROBE_KERNEL to a bzImage, or install the Debian package debian-installer-12-netboot-amd64)"}
	}
	key := probeCacheKey(bin, kernel)
	if r, ok := readProbeCache(opts.CacheDir, key); ok {
		r.Cached = true
		return r
	}
	if opts.Timeout == 0 {
		opts.Timeout = 15 * time.Second
	}
	r := bootProbe(ctx, bin, kernel, opts.Timeout)
	if ctx.Err() == nil {
		writeProbeCache(opts.CacheDir, key, r)
	}
	return r
}

func kvmDeviceUsable() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("/dev/kvm does not exist (no hardware virtualisation, or the kvm module is not loaded)")
		}
		return fmt.Errorf("cannot open /dev/kvm: %w (add the user to the kvm group)", err)
	}
	f.Close()
	return nil
}

func findProbeKernel(extra []string) string {
	candidates := []string{os.Getenv("BAKE_PROBE_KERNEL")}
	host, _ := filepath.Glob("/boot/vmlinuz-*")
	candidates = append(candidates, host...)
	candidates = append(candidates, extra...)
	installer, _ := filepath.Glob("/usr/lib/debian-installer/images/*/amd64/text/debian-installer/amd64/linux")
	candidates = append(candidates, installer...)
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

func bootProbe(ctx context.Context, bin, kernel string, timeout time.Duration) ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"-accel", "kvm", "-m", "256", "-smp", "1",
		"-display", "none", "-vga", "none", "-serial", "stdio", "-monitor", "none",
		"-no-reboot", "-nodefaults",
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1 loglevel=4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	res := ProbeResult{Kernel: kernel}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.Reason = fmt.Sprintf("a KVM guest booting %s did not finish within %s (nested KVM that hangs once a guest kernel runs looks like this)", kernel, timeout)
	case err != nil:
		res.Reason = fmt.Sprintf("qemu -accel kvm failed: %v: %s", err, lastLine(out.String()))
	case !strings.Contains(out.String(), "Kernel panic"):
		res.Reason = fmt.Sprintf("a KVM guest exited after %s without the kernel running: %s", time.Since(start).Round(time.Millisecond), lastLine(out.String()))
	default:
		res.KVM = true
	}
	return res
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func probeCacheKey(bin, kernel string) string {
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	h := sha256.New()
	for _, part := range []string{string(bytes.TrimSpace(bootID)), bin, kernel, fileStamp(bin), fileStamp(kernel)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func fileStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d-%d", st.Size(), st.ModTime().UnixNano())
}

func readProbeCache(dir, key string) (ProbeResult, bool) {
	var r ProbeResult
	if dir == "" {
		return r, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "kvm-probe-"+key+".json"))
	if err != nil || json.Unmarshal(b, &r) != nil {
		return r, false
	}
	return r, true
}

func writeProbeCache(dir, key string, r ProbeResult) {
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	b, _ := json.Marshal(r)
	tmp := filepath.Join(dir, ".kvm-probe-"+key+".tmp")
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, filepath.Join(dir, "kvm-probe-"+key+".json"))
	}
}

// EnvOVMFDir is the environment variable that, when set, names the only
// directory FindEFI searches, for an OVMF build outside the system paths.
const EnvOVMFDir = "BAKE_OVMF_DIR"

// ovmfFiles are the file names of OVMF's code and variable store template
// in Debian's ovmf package, the 4 MiB flash layout first.
var ovmfFiles = [][2]string{
	{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"},
	{"OVMF_CODE.fd", "OVMF_VARS.fd"},
}

// FindEFI locates OVMF through QEMU's firmware descriptors, preferring
// firmware without Secure Boot, then in Debian's /usr/share/OVMF. When
// EnvOVMFDir is set, it looks for the same file names in that directory
// only.
func FindEFI() (code, varsTemplate string, err error) {
	if dir := os.Getenv(EnvOVMFDir); dir != "" {
		if code, varsTemplate, ok := findOVMFIn(dir); ok {
			return code, varsTemplate, nil
		}
		return "", "", fmt.Errorf("EFI firmware (OVMF) not found in %s=%q: put OVMF_CODE_4M.fd and OVMF_VARS_4M.fd there, "+
			"or unset %s and install the Debian package ovmf (apt-get install ovmf), or set vm.firmware = \"bios\"",
			EnvOVMFDir, dir, EnvOVMFDir)
	}
	descriptors, _ := filepath.Glob("/usr/share/qemu/firmware/*.json")
	type descriptor struct {
		InterfaceTypes []string `json:"interface-types"`
		Mapping        struct {
			Device     string `json:"device"`
			Executable struct {
				Filename string `json:"filename"`
			} `json:"executable"`
			NVRAMTemplate struct {
				Filename string `json:"filename"`
			} `json:"nvram-template"`
		} `json:"mapping"`
		Targets []struct {
			Architecture string `json:"architecture"`
		} `json:"targets"`
		Features []string `json:"features"`
	}
	best := -1
	for _, path := range descriptors {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var d descriptor
		if json.Unmarshal(b, &d) != nil || d.Mapping.Device != "flash" || !contains(d.InterfaceTypes, "uefi") {
			continue
		}
		if len(d.Targets) == 0 || d.Targets[0].Architecture != "x86_64" {
			continue
		}
		score := 2
		if contains(d.Features, "secure-boot") || contains(d.Features, "requires-smm") {
			score = 1
		}
		if contains(d.Features, "enrolled-keys") {
			score = 0
		}
		if score > best && fileExists(d.Mapping.Executable.Filename) && fileExists(d.Mapping.NVRAMTemplate.Filename) {
			best, code, varsTemplate = score, d.Mapping.Executable.Filename, d.Mapping.NVRAMTemplate.Filename
		}
	}
	if code != "" {
		return code, varsTemplate, nil
	}
	if code, varsTemplate, ok := findOVMFIn("/usr/share/OVMF"); ok {
		return code, varsTemplate, nil
	}
	return "", "", errors.New("EFI firmware (OVMF) not found: install the Debian package ovmf (apt-get install ovmf), or set vm.firmware = \"bios\"")
}

// findOVMFIn returns the first pair of ovmfFiles that both exist in dir.
func findOVMFIn(dir string) (code, varsTemplate string, ok bool) {
	for _, pair := range ovmfFiles {
		code, varsTemplate = filepath.Join(dir, pair[0]), filepath.Join(dir, pair[1])
		if fileExists(code) && fileExists(varsTemplate) {
			return code, varsTemplate, true
		}
	}
	return "", "", false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
