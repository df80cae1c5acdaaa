package recipes

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Limits checked by validation.
const (
	MinCPUs     = 1
	MaxCPUs     = 256
	MinMemory   = Size(64 << 20)
	MaxMemory   = Size(4 << 40)
	MinDiskSize = Size(1 << 20)
	// maxNameLength keeps names usable as file names on every common file
	// system, with room for a format suffix.
	maxNameLength = 128
	// maxVolumeLabel is the ISO 9660 limit for a volume identifier.
	maxVolumeLabel = 32
)

var (
	safeName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sha256Value = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	sha512Value = regexp.MustCompile(`^[0-9a-fA-F]{128}$`)
)

// Allowed values of the enumerated settings, with the default first.
var (
	Accelerators   = []string{"auto", "kvm", "tcg"}
	Firmwares      = []string{"bios", "efi"}
	DiskInterfaces = []string{"virtio", "ide", "scsi"}
	Formats        = []string{"qcow2", "raw"}
	Compressions   = []string{"zstd", "zlib", "none"}
	Communicators  = []string{"ssh", "none"}
)

// validate checks a recipe after defaults are applied.
func validate(r *Recipe, errs *collector) {
	validateName(errs, keyPath{"name"}, r.Name, true)
	validateSource(r, errs)
	validateVM(r, errs)
	validateHTTP(r, errs)
	validateCloudInit(r, errs)
	validateCommunicator(r, errs)
	validateProvisioners(r, errs)
	validateOutput(r, errs)
}

// validateName checks that name can be used as a file name.
func validateName(errs *collector, path keyPath, name string, required bool) {
	switch {
	case name == "" && required:
		errs.add(path, "missing: set a name such as \"debian-12\"")
	case name == "":
	case len(name) > maxNameLength:
		errs.add(path, "invalid name: longer than %d characters", maxNameLength)
	case !safeName.MatchString(name):
		errs.add(path, "invalid name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
}

func validateSource(r *Recipe, errs *collector) {
	s := r.Source
	switch {
	case s.DiskImage == "" && len(s.ISO) == 0:
		errs.add(keyPath{"source"}, "missing source: set source.disk_image or source.iso")
		return
	case s.DiskImage != "" && len(s.ISO) > 0:
		errs.add(keyPath{"source"}, "both disk_image and iso are set: keep one")
		return
	}
	checkLocation(errs, keyPath{"source", "disk_image"}, s.DiskImage)
	for i, iso := range s.ISO {
		if iso == "" {
			errs.add(keyPath{"source", "iso"}.index(i), "empty path: remove it or name an ISO")
		}
		checkLocation(errs, keyPath{"source", "iso"}.index(i), iso)
	}

	path := keyPath{"source", "checksum"}
	if err := checkChecksum(s.Checksum); err != nil {
		errs.add(path, "%v", err)
		return
	}
	if s.Checksum == "" && (IsURL(s.DiskImage) || slices.ContainsFunc(s.ISO, IsURL)) {
		errs.add(path, "missing: a download needs a checksum such as \"sha256:HEX\" or"+
			" \"file:URL\", or \"none\" to skip verification")
	}
}

// urlScheme matches the scheme of a URL such as "ftp://host/x".
var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// checkLocation rejects URLs that cannot be fetched: only http, https and
// file URLs are supported.
func checkLocation(errs *collector, path keyPath, location string) {
	m := urlScheme.FindStringSubmatch(location)
	if m == nil {
		return
	}
	switch strings.ToLower(m[1]) {
	case "http", "https", "file":
		return
	}
	errs.add(path, "unsupported URL scheme %q: use an http(s) URL, a file:// URL or a local path", m[1])
}

// checkChecksum accepts "", "none", "sha256:HEX", "sha512:HEX" and
// "file:URL-or-path".
func checkChecksum(c string) error {
	algorithm, value, found := strings.Cut(c, ":")
	switch {
	case c == "" || c == "none":
		return nil
	case !found:
		return fmt.Errorf("invalid checksum %q: use \"sha256:HEX\", \"sha512:HEX\", \"file:URL\" or \"none\"", c)
	case algorithm == "sha256" && !sha256Value.MatchString(value):
		return fmt.Errorf("invalid sha256 checksum: expected 64 hexadecimal digits, got %d characters", len(value))
	case algorithm == "sha512" && !sha512Value.MatchString(value):
		return fmt.Errorf("invalid sha512 checksum: expected 128 hexadecimal digits, got %d characters", len(value))
	case algorithm == "file" && value == "":
		return fmt.Errorf("invalid checksum %q: name the checksum file after \"file:\"", c)
	case algorithm == "sha256" || algorithm == "sha512" || algorithm == "file":
		return nil
	}
	return fmt.Errorf("invalid checksum %q: unsupported algorithm %q, use sha256, sha512 or file", c, algorithm)
}

func validateVM(r *Recipe, errs *collector) {
	vm := r.VM
	if vm.CPUs < MinCPUs || vm.CPUs > MaxCPUs {
		errs.add(keyPath{"vm", "cpus"}, "invalid value %d: must be between %d and %d", vm.CPUs, MinCPUs, MaxCPUs)
	}
	if vm.Memory < MinMemory || vm.Memory > MaxMemory {
		errs.add(keyPath{"vm", "memory"}, "invalid value %s: must be between %s and %s", vm.Memory, MinMemory, MaxMemory)
	}
	switch {
	case vm.DiskSize != 0 && vm.DiskSize < MinDiskSize:
		errs.add(keyPath{"vm", "disk_size"}, "invalid value %s: must be at least %s", vm.DiskSize, MinDiskSize)
	case vm.DiskSize == 0 && len(r.Source.ISO) > 0 && r.Source.DiskImage == "":
		errs.add(keyPath{"vm", "disk_size"}, "missing: an installer needs a blank disk, set a size such as \"10GiB\"")
	}
	checkEnum(errs, keyPath{"vm", "accelerator"}, vm.Accelerator, Accelerators)
	checkEnum(errs, keyPath{"vm", "firmware"}, vm.Firmware, Firmwares)
	checkEnum(errs, keyPath{"vm", "disk_interface"}, vm.DiskInterface, DiskInterfaces)
	if vm.Initrd != "" && vm.Kernel == "" {
		errs.add(keyPath{"vm", "initrd"}, "set without vm.kernel: an initrd is only used for direct kernel boot")
	}
	if vm.Append != "" && vm.Kernel == "" {
		errs.add(keyPath{"vm", "append"}, "set without vm.kernel: a command line is only used for direct kernel boot")
	}
	for i, group := range vm.QEMUArgs {
		if len(group) == 0 {
			errs.add(keyPath{"vm", "qemu_args"}.index(i), "empty argument group: remove it")
		}
	}
}

func checkEnum(errs *collector, path keyPath, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		errs.add(path, "invalid value %q: use one of %s", value, quoteList(allowed))
	}
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func checkPort(errs *collector, path keyPath, port int) bool {
	if port < 1 || port > 65535 {
		errs.add(path, "invalid port %d: must be between 1 and 65535", port)
		return false
	}
	return true
}

func validateHTTP(r *Recipe, errs *collector) {
	h := r.HTTP
	okMin := checkPort(errs, keyPath{"http", "port_min"}, h.PortMin)
	okMax := checkPort(errs, keyPath{"http", "port_max"}, h.PortMax)
	if okMin && okMax && h.PortMin > h.PortMax {
		errs.add(keyPath{"http", "port_min"}, "invalid port range %d-%d: port_min is greater than port_max",
			h.PortMin, h.PortMax)
	}
	for name := range h.Content {
		checkRelativeName(errs, keyPath{"http", "content", name}, name)
	}
}

// checkRelativeName rejects names that would escape the directory they are
// served or stored in.
func checkRelativeName(errs *collector, path keyPath, name string) {
	clean := strings.TrimPrefix(name, "/")
	if clean == "" || slices.Contains(strings.Split(clean, "/"), "..") {
		errs.add(path, "invalid name %q: use a relative path without \"..\"", name)
	}
}

func validateCloudInit(r *Recipe, errs *collector) {
	c := r.CloudInit
	if len(c.Label) > maxVolumeLabel {
		errs.add(keyPath{"cloud_init", "label"}, "invalid label %q: longer than %d characters", c.Label, maxVolumeLabel)
	}
	for name := range c.Files {
		checkRelativeName(errs, keyPath{"cloud_init", "files", name}, name)
	}
}

func validateCommunicator(r *Recipe, errs *collector) {
	checkEnum(errs, keyPath{"communicator"}, r.Communicator, Communicators)
	checkPort(errs, keyPath{"ssh", "port"}, r.SSH.Port)
	if r.Communicator == "none" && len(r.Provision) > 0 {
		errs.add(keyPath{"provision"}, "provisioners need a communicator: remove communicator = \"none\"")
	}
}

func validateProvisioners(r *Recipe, errs *collector) {
	for i, p := range r.Provision {
		base := keyPath{"provision"}.index(i)
		if errs.hasUnder(base) {
			continue
		}
		set := 0
		for _, ok := range []bool{len(p.Shell) > 0, len(p.Local) > 0, p.Script != "", p.Source != ""} {
			if ok {
				set++
			}
		}
		switch {
		case set == 0:
			errs.add(base, "missing action: set one of shell, local, script or source")
		case set > 1:
			errs.add(base, "more than one action: set only one of shell, local, script or source")
		case p.Source != "" && p.Destination == "":
			errs.add(base.child("source"), "missing destination: a file provisioner needs a guest path in destination")
		case p.Source == "" && p.Destination != "":
			errs.add(base.child("destination"), "set without source: only a file provisioner uploads to a destination")
		}
		for name := range p.Environment {
			if !envName.MatchString(name) {
				errs.add(base.child("environment").child(name),
					"invalid environment variable name: use letters, digits and underscores")
			}
		}
	}
}

func validateOutput(r *Recipe, errs *collector) {
	o := r.Output
	if o.Filename != r.Name {
		validateName(errs, keyPath{"output", "filename"}, o.Filename, false)
	}
	if len(o.Formats) == 0 {
		errs.add(keyPath{"output", "formats"}, "empty: list at least one of %s", quoteList(Formats))
	}
	for i, f := range o.Formats {
		path := keyPath{"output", "formats"}.index(i)
		if !slices.Contains(Formats, f) {
			errs.add(path, "invalid format %q: use one of %s", f, quoteList(Formats))
		} else if slices.Index(o.Formats, f) < i {
			errs.add(path, "duplicate format %q: list each format once", f)
		}
	}
	checkEnum(errs, keyPath{"output", "compression"}, o.Compression, Compressions)
}

// checkFiles reports local input files that do not exist, once paths are
// resolved. Downloads are checked when they are fetched.
// unrendered reports whether p still holds a template, which happens only
// when rendering it failed and that error is already reported.
func unrendered(p string) bool {
	return strings.Contains(p, "{{")
}

func checkFiles(r *Recipe, errs *collector) {
	exists := func(path keyPath, p string, wantDir bool) {
		if p == "" || IsURL(p) || unrendered(p) {
			return
		}
		info, err := os.Stat(p)
		switch {
		case err != nil:
			errs.add(path, "file not found: %s", p)
		case wantDir && !info.IsDir():
			errs.add(path, "not a directory: %s", p)
		}
	}
	// A disk image or ISO must be a regular file with content: QEMU boots
	// an empty disk without complaint, and the build would then wait out
	// the SSH timeout.
	image := func(path keyPath, p string) {
		if p == "" || unrendered(p) {
			return
		}
		if IsURL(p) {
			if u, err := url.Parse(p); err != nil || (u.Scheme != "file" && u.Host == "") {
				errs.add(path, "invalid URL %q: it has no host", p)
			}
			return
		}
		info, err := os.Stat(p)
		switch {
		case err != nil:
			errs.add(path, "file not found: %s", p)
		case !info.Mode().IsRegular():
			errs.add(path, "not a regular file: %s: name a disk image or ISO file", p)
		case info.Size() == 0:
			errs.add(path, "empty file: %s: name a disk image or ISO file", p)
		}
	}
	image(keyPath{"source", "disk_image"}, r.Source.DiskImage)
	for i, iso := range r.Source.ISO {
		image(keyPath{"source", "iso"}.index(i), iso)
	}
	if p, ok := strings.CutPrefix(r.Source.Checksum, "file:"); ok {
		exists(keyPath{"source", "checksum"}, p, false)
	}
	exists(keyPath{"vm", "kernel"}, r.VM.Kernel, false)
	exists(keyPath{"vm", "initrd"}, r.VM.Initrd, false)
	exists(keyPath{"http", "directory"}, r.HTTP.Directory, true)
	for name, p := range r.CloudInit.Files {
		exists(keyPath{"cloud_init", "files", name}, p, false)
	}
	for i, p := range r.Provision {
		base := keyPath{"provision"}.index(i)
		exists(base.child("script"), p.Script, false)
		exists(base.child("source"), p.Source, false)
	}
	exists(keyPath{"ssh", "private_key_file"}, r.SSH.PrivateKeyFile, false)
}
