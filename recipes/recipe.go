// Package recipes defines the recipe schema, decodes recipes strictly from
// TOML, resolves variables and validates the result. The shipped example
// recipes live beside this file.
package recipes

// Recipe is one decoded and validated recipe. Durations and sizes are
// already parsed; fields marked "template" may hold Go text/template actions
// that are rendered at build time with TemplateData.
type Recipe struct {
	Name        string              `toml:"name"`
	Description string              `toml:"description"`
	Variables   map[string]Variable `toml:"variables"`

	Source       Source        `toml:"source"`
	VM           VM            `toml:"vm"`
	Boot         Boot          `toml:"boot"`
	HTTP         HTTP          `toml:"http"`
	CloudInit    CloudInit     `toml:"cloud_init"`
	Communicator string        `toml:"communicator"` // "ssh" (default) or "none"
	SSH          SSH           `toml:"ssh"`
	Provision    []Provisioner `toml:"provision"`
	Shutdown     Shutdown      `toml:"shutdown"`
	Output       Output        `toml:"output"`

	// Path is the file the recipe was read from; Dir is its directory,
	// against which relative paths in the recipe are resolved.
	Path string `toml:"-"`
	Dir  string `toml:"-"`
	// Vars holds the final value of every variable after defaults,
	// variable files, environment and command-line overrides.
	Vars map[string]string `toml:"-"`
	// Secrets lists the values that must never appear in output: sensitive
	// variables, the SSH password.
	Secrets []string `toml:"-"`
	// Warnings are problems that do not stop a build, such as a modifier
	// key held by the boot command and never released, each prefixed with
	// file:line:column.
	Warnings []string `toml:"-"`
	// Hash is the SHA-256 of the recipe file's bytes, hex encoded.
	Hash string `toml:"-"`

	// origin places errors found after loading, such as a build name that
	// another recipe file also uses.
	origin origin
}

// Variable is one entry of [variables].
type Variable struct {
	Default     string `toml:"default"`
	Description string `toml:"description"`
	Sensitive   bool   `toml:"sensitive"`
}

// Source names the disk image or installer ISO the build starts from.
type Source struct {
	DiskImage string   `toml:"disk_image"` // local path or http(s) URL
	ISO       []string `toml:"iso"`        // path or URL; several are mirrors tried in turn
	Checksum  string   `toml:"checksum"`   // sha256:HEX, sha512:HEX, file:URL-or-path, none
}

// VM describes the QEMU machine.
type VM struct {
	CPUs          int        `toml:"cpus"`
	Memory        Size       `toml:"memory"`
	DiskSize      Size       `toml:"disk_size"`
	DiskInterface string     `toml:"disk_interface"` // virtio (default), ide, scsi
	Accelerator   string     `toml:"accelerator"`    // auto (default), kvm, tcg
	Firmware      string     `toml:"firmware"`       // bios (default), efi
	Machine       string     `toml:"machine"`        // QEMU machine type, default q35 for efi, pc otherwise
	NetDevice     string     `toml:"net_device"`     // virtio-net-pci (default), e1000
	Kernel        string     `toml:"kernel"`         // direct kernel boot
	Initrd        string     `toml:"initrd"`
	Append        string     `toml:"append"` // template
	QEMUBinary    string     `toml:"qemu_binary"`
	QEMUArgs      [][]string `toml:"qemu_args"` // extra argv groups added after the defaults
}

// Boot describes what happens between power-on and the communicator.
type Boot struct {
	Wait        Duration `toml:"wait"`
	Command     []string `toml:"command"` // template; joined before parsing
	KeyInterval Duration `toml:"key_interval"`
	KeyHold     Duration `toml:"key_hold"`
}

// HTTP configures the seed server.
type HTTP struct {
	Directory string            `toml:"directory"`
	Content   map[string]string `toml:"content"` // path -> template
	PortMin   int               `toml:"port_min"`
	PortMax   int               `toml:"port_max"`
	// RequestTimeout fails the build when the guest has made no request
	// this long after the boot command was typed. Zero disables the check.
	RequestTimeout Duration `toml:"request_timeout"`
}

// CloudInit describes the NoCloud seed CD. It is built when any field is set.
type CloudInit struct {
	Label         string            `toml:"label"`          // volume label, default "cidata"
	UserData      string            `toml:"user_data"`      // template
	MetaData      string            `toml:"meta_data"`      // template
	NetworkConfig string            `toml:"network_config"` // template
	Files         map[string]string `toml:"files"`          // name on the CD -> local path
}

// SSH configures the SSH communicator.
type SSH struct {
	Username       string   `toml:"username"`
	Password       string   `toml:"password"`
	PrivateKeyFile string   `toml:"private_key_file"`
	Port           int      `toml:"port"` // guest port, default 22
	Timeout        Duration `toml:"timeout"`
}

// Provisioner is one [[provision]] entry. Exactly one of Shell, Local, Script or
// Source is set.
type Provisioner struct {
	Name  string   `toml:"name"`
	Shell []string `toml:"shell"` // inline commands, template
	// Local runs these commands on the host, not in the guest, with sh -e
	// in the recipe's directory. It is the only way a recipe runs host
	// commands, and `bake validate` lists it.
	Local       []string          `toml:"local"`  // template
	Script      string            `toml:"script"` // local script, uploaded and run
	Source      string            `toml:"source"` // file provisioner: local file or directory
	Destination string            `toml:"destination"`
	Environment map[string]string `toml:"environment"` // template values
	// ExpectDisconnect accepts the connection dropping, for a command that
	// reboots the guest.
	ExpectDisconnect bool `toml:"expect_disconnect"`
}

// Shutdown describes how the guest is stopped.
type Shutdown struct {
	Command string   `toml:"command"` // default "poweroff" ("sudo -n poweroff" for non-root users)
	Timeout Duration `toml:"timeout"`
}

// Output describes the artifacts.
type Output struct {
	Directory   string   `toml:"directory"`
	Formats     []string `toml:"formats"`     // qcow2, raw
	Compression string   `toml:"compression"` // zstd (default), zlib, none
	Filename    string   `toml:"filename"`    // base name, default the recipe name
}

// TemplateData is the set of values template fields may refer to.
type TemplateData struct {
	Name         string
	HTTPIP       string
	HTTPPort     int
	SSHPublicKey string
	Vars         map[string]string
}
