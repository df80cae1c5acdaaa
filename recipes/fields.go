package recipes

import (
	"slices"
	"strings"
)

// textField is one string in a recipe that may hold template actions.
type textField struct {
	path  keyPath
	value string
	set   func(string)
}

func field(path keyPath, p *string) textField {
	return textField{path: path, value: *p, set: func(s string) { *p = s }}
}

// staticFields lists the strings rendered when the recipe is loaded, with
// only .Name and .Vars available.
func staticFields(r *Recipe) []textField {
	f := []textField{
		field(keyPath{"communicator"}, &r.Communicator),
		field(keyPath{"source", "disk_image"}, &r.Source.DiskImage),
		field(keyPath{"source", "checksum"}, &r.Source.Checksum),
		field(keyPath{"vm", "disk_interface"}, &r.VM.DiskInterface),
		field(keyPath{"vm", "accelerator"}, &r.VM.Accelerator),
		field(keyPath{"vm", "firmware"}, &r.VM.Firmware),
		field(keyPath{"vm", "machine"}, &r.VM.Machine),
		field(keyPath{"vm", "net_device"}, &r.VM.NetDevice),
		field(keyPath{"vm", "kernel"}, &r.VM.Kernel),
		field(keyPath{"vm", "initrd"}, &r.VM.Initrd),
		field(keyPath{"vm", "qemu_binary"}, &r.VM.QEMUBinary),
		field(keyPath{"http", "directory"}, &r.HTTP.Directory),
		field(keyPath{"cloud_init", "label"}, &r.CloudInit.Label),
		field(keyPath{"ssh", "username"}, &r.SSH.Username),
		field(keyPath{"ssh", "password"}, &r.SSH.Password),
		field(keyPath{"ssh", "private_key_file"}, &r.SSH.PrivateKeyFile),
		field(keyPath{"shutdown", "command"}, &r.Shutdown.Command),
		field(keyPath{"output", "directory"}, &r.Output.Directory),
		field(keyPath{"output", "compression"}, &r.Output.Compression),
		field(keyPath{"output", "filename"}, &r.Output.Filename),
	}
	f = appendList(f, keyPath{"source", "iso"}, r.Source.ISO)
	for i, group := range r.VM.QEMUArgs {
		f = appendList(f, keyPath{"vm", "qemu_args"}.index(i), group)
	}
	f = appendMap(f, keyPath{"cloud_init", "files"}, r.CloudInit.Files)
	for i := range r.Provision {
		p := &r.Provision[i]
		base := keyPath{"provision"}.index(i)
		f = append(f,
			field(base.child("name"), &p.Name),
			field(base.child("script"), &p.Script),
			field(base.child("source"), &p.Source),
			field(base.child("destination"), &p.Destination),
		)
	}
	return appendList(f, keyPath{"output", "formats"}, r.Output.Formats)
}

// dynamicFields lists the strings rendered during the build, when the
// HTTP address and the SSH key are known. Load only checks them.
func dynamicFields(r *Recipe) []textField {
	f := []textField{
		field(keyPath{"vm", "append"}, &r.VM.Append),
		field(keyPath{"cloud_init", "user_data"}, &r.CloudInit.UserData),
		field(keyPath{"cloud_init", "meta_data"}, &r.CloudInit.MetaData),
		field(keyPath{"cloud_init", "network_config"}, &r.CloudInit.NetworkConfig),
	}
	f = appendList(f, keyPath{"boot", "command"}, r.Boot.Command)
	f = appendMap(f, keyPath{"http", "content"}, r.HTTP.Content)
	for i := range r.Provision {
		p := &r.Provision[i]
		base := keyPath{"provision"}.index(i)
		f = appendList(f, base.child("shell"), p.Shell)
		f = appendList(f, base.child("local"), p.Local)
		f = appendMap(f, base.child("environment"), p.Environment)
	}
	return f
}

func appendList(f []textField, path keyPath, list []string) []textField {
	for i := range list {
		f = append(f, field(path.index(i), &list[i]))
	}
	return f
}

func appendMap(f []textField, path keyPath, m map[string]string) []textField {
	for _, k := range sortedKeys(m) {
		f = append(f, textField{path: path.child(k), value: m[k], set: func(s string) { m[k] = s }})
	}
	return f
}

// renderStatic renders the static fields and parses the sizes and
// durations that were written as templates.
func renderStatic(r *Recipe, d *decoder, errs *collector) {
	data := TemplateData{Name: r.Name, Vars: r.Vars}
	for _, f := range staticFields(r) {
		if out, ok := renderField(r, f.path, f.value, data, errs); ok {
			f.set(out)
		}
	}
	for _, t := range d.deferred {
		out, ok := renderField(r, t.path, t.text, data, errs)
		if !ok {
			continue
		}
		if err := t.target.UnmarshalText([]byte(out)); err != nil {
			errs.add(t.path, "%v", err)
		}
	}
}

// renderField renders one static field. It reports false, without adding
// an error, when the field refers to a variable whose own error is already
// recorded.
func renderField(r *Recipe, path keyPath, text string, data TemplateData, errs *collector) (string, bool) {
	if !strings.Contains(text, "{{") || errs.has(path) {
		return text, false
	}
	tmpl, err := parseTemplate(text, r.Vars)
	if err != nil {
		errs.add(path, "%v", err)
		return "", false
	}
	refs := templateRefs(tmpl)
	if err := checkStaticRefs(refs); err != nil {
		errs.add(path, "%v", err)
		return "", false
	}
	if hasUnsetVariable(r, refs) {
		return "", false
	}
	out, err := Render(text, data)
	if err != nil {
		errs.add(path, "%v", err)
		return "", false
	}
	return out, true
}

// hasUnsetVariable reports whether refs names a declared variable that has
// no value, which resolveVariables has already reported.
func hasUnsetVariable(r *Recipe, refs refs) bool {
	for _, name := range refs.vars {
		_, declared := r.Variables[name]
		_, set := r.Vars[name]
		if declared && !set {
			return true
		}
	}
	return false
}

// checkDynamic parses the dynamic fields and checks the fields and
// variables they refer to, so that mistakes surface before a VM starts.
func checkDynamic(r *Recipe, errs *collector) {
	for _, f := range dynamicFields(r) {
		if !strings.Contains(f.value, "{{") || errs.has(f.path) {
			continue
		}
		tmpl, err := parseTemplate(f.value, r.Vars)
		if err != nil {
			errs.add(f.path, "%v", err)
			continue
		}
		refs := templateRefs(tmpl)
		for _, field := range refs.fields {
			if !slices.Contains(templateFields, field) {
				errs.add(f.path, "%v", unknownFieldError(field))
			}
		}
		for _, name := range refs.vars {
			if _, ok := r.Variables[name]; !ok {
				errs.add(f.path, "%v", unknownVariableError(name, r.Vars))
			}
		}
	}
}
