package recipes

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Defaults for values a recipe leaves out. docs/recipes.md lists them too.
const (
	DefaultCPUs          = 2
	DefaultMemory        = 2 << 30
	DefaultDiskInterface = "virtio"
	DefaultAccelerator   = "auto"
	DefaultFirmware      = "bios"
	DefaultNetDevice     = "virtio-net-pci"
	DefaultCommunicator  = "ssh"
	DefaultSSHUsername   = "root"
	DefaultSSHPort       = 22
	DefaultSSHTimeout    = 30 * time.Minute
	DefaultShutdownTime  = 5 * time.Minute
	DefaultCompression   = "zstd"
	DefaultHTTPPortMin   = 8000
	DefaultHTTPPortMax   = 9000
	DefaultCloudInitName = "cidata"
)

// applyDefaults fills every value the recipe left empty.
func applyDefaults(r *Recipe) {
	setDefault(&r.Communicator, DefaultCommunicator)
	applyVMDefaults(&r.VM)

	setDefault(&r.SSH.Username, DefaultSSHUsername)
	if r.SSH.Port == 0 {
		r.SSH.Port = DefaultSSHPort
	}
	if r.SSH.Timeout == 0 {
		r.SSH.Timeout = Duration(DefaultSSHTimeout)
	}

	if r.Shutdown.Command == "" {
		r.Shutdown.Command = "poweroff"
		if r.SSH.Username != "root" {
			// -n makes sudo fail at once instead of waiting for a password
			// that a non-interactive session cannot type.
			r.Shutdown.Command = "sudo -n poweroff"
		}
	}
	if r.Shutdown.Timeout == 0 {
		r.Shutdown.Timeout = Duration(DefaultShutdownTime)
	}

	if r.HTTP.PortMin == 0 {
		r.HTTP.PortMin = DefaultHTTPPortMin
	}
	if r.HTTP.PortMax == 0 {
		r.HTTP.PortMax = DefaultHTTPPortMax
	}
	setDefault(&r.CloudInit.Label, DefaultCloudInitName)

	setDefault(&r.Output.Directory, filepath.Join("output", r.Name))
	if r.Output.Formats == nil {
		r.Output.Formats = []string{"qcow2"}
	}
	setDefault(&r.Output.Compression, DefaultCompression)
	setDefault(&r.Output.Filename, r.Name)
}

func applyVMDefaults(vm *VM) {
	if vm.CPUs == 0 {
		vm.CPUs = DefaultCPUs
	}
	if vm.Memory == 0 {
		vm.Memory = DefaultMemory
	}
	setDefault(&vm.DiskInterface, DefaultDiskInterface)
	setDefault(&vm.Accelerator, DefaultAccelerator)
	setDefault(&vm.Firmware, DefaultFirmware)
	setDefault(&vm.NetDevice, DefaultNetDevice)
	if vm.Machine == "" {
		vm.Machine = "pc"
		if vm.Firmware == "efi" {
			vm.Machine = "q35"
		}
	}
}

func setDefault(s *string, value string) {
	if *s == "" {
		*s = value
	}
}

// IsURL reports whether s is an http or https URL rather than a local path.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// resolvePaths makes relative local paths absolute: against the recipe's
// directory, except output.directory, which is relative to the working
// directory as in most build tools. A file:// URL becomes its path.
func resolvePaths(r *Recipe) {
	local := func(p *string) {
		if *p != "" && !IsURL(*p) {
			*p = resolvePath(r.Dir, *p)
		}
	}
	if r.Source.Checksum == "" && isLocalSource(r.Source) {
		r.Source.Checksum = "none"
	}
	local(&r.Source.DiskImage)
	for i := range r.Source.ISO {
		local(&r.Source.ISO[i])
	}
	if rest, ok := strings.CutPrefix(r.Source.Checksum, "file:"); ok && !IsURL(rest) && rest != "" {
		r.Source.Checksum = "file:" + resolvePath(r.Dir, rest)
	}
	local(&r.VM.Kernel)
	local(&r.VM.Initrd)
	local(&r.HTTP.Directory)
	for name, p := range r.CloudInit.Files {
		r.CloudInit.Files[name] = resolvePath(r.Dir, p)
	}
	for i := range r.Provision {
		local(&r.Provision[i].Script)
		local(&r.Provision[i].Source)
	}
	local(&r.SSH.PrivateKeyFile)
	if abs, err := filepath.Abs(r.Output.Directory); err == nil {
		r.Output.Directory = abs
	}
}

// resolvePath expands a leading "~/" to the home directory and joins a
// relative path to dir.
func resolvePath(dir, p string) string {
	if u, err := url.Parse(p); err == nil && u.Scheme == "file" && u.Path != "" {
		return filepath.Clean(filepath.FromSlash(u.Path))
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// isLocalSource reports whether every source location is a local file.
func isLocalSource(s Source) bool {
	if s.DiskImage != "" {
		return !IsURL(s.DiskImage)
	}
	return len(s.ISO) > 0 && !slices.ContainsFunc(s.ISO, IsURL)
}

// Enabled reports whether any cloud-init data is set, which means the
// build attaches a NoCloud seed CD.
func (c CloudInit) Enabled() bool {
	return c.UserData != "" || c.MetaData != "" || c.NetworkConfig != "" || len(c.Files) > 0
}

// TemplateData returns the data for rendering the recipe's dynamic fields,
// with the build-time values still empty for the caller to fill.
func (r *Recipe) TemplateData() TemplateData {
	return TemplateData{Name: r.Name, Vars: r.Vars}
}

// IsFile reports whether p is a file provisioner, which uploads Source to
// Destination.
func (p Provisioner) IsFile() bool { return p.Source != "" }
