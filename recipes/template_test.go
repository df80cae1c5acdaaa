package recipes

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	data := TemplateData{
		Name:         "deb",
		HTTPIP:       "10.0.2.2",
		HTTPPort:     8123,
		SSHPublicKey: "ssh-ed25519 AAAA bake",
		Vars:         map[string]string{"mirror": "deb.debian.org", "empty": ""},
	}
	tests := []struct {
		name    string
		text    string
		want    string
		wantErr string
	}{
		{name: "plain text", text: "no actions", want: "no actions"},
		{name: "build fields", text: "url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/{{ .Name }}",
			want: "url=http://10.0.2.2:8123/deb"},
		{name: "ssh key", text: "- {{ .SSHPublicKey }}", want: "- ssh-ed25519 AAAA bake"},
		{name: "variable field", text: "{{ .Vars.mirror }}", want: "deb.debian.org"},
		{name: "user function", text: `{{ user "mirror" }}`, want: "deb.debian.org"},
		{name: "empty variable", text: "[{{ .Vars.empty }}]", want: "[]"},
		{name: "index form", text: `{{ index .Vars "mirror" }}`, want: "deb.debian.org"},
		{name: "root variable", text: `{{ with .Name }}{{ $.Vars.mirror }}{{ end }}`, want: "deb.debian.org"},
		{
			name:    "unknown variable field",
			text:    "{{ .Vars.mirorr }}",
			wantErr: `unknown variable "mirorr": declared variables are empty, mirror`,
		},
		{
			name:    "unknown variable in user",
			text:    `{{ user "nope" }}`,
			wantErr: `unknown variable "nope": declared variables are empty, mirror`,
		},
		{
			name:    "unknown variable in index",
			text:    `{{ index .Vars "nope" }}`,
			wantErr: `unknown variable "nope": declared variables are empty, mirror`,
		},
		{
			name:    "unknown field",
			text:    "{{ .HttpIP }}",
			wantErr: "unknown template field .HttpIP: use .Name, .HTTPIP, .HTTPPort, .SSHPublicKey, .Vars",
		},
		{
			name:    "parse error",
			text:    "{{ .Name ",
			wantErr: "invalid template: line 1: unclosed action",
		},
		{
			name:    "unknown function",
			text:    "{{ env \"HOME\" }}",
			wantErr: `invalid template: line 1: function "env" not defined`,
		},
		{
			name:    "range rejected",
			text:    "{{ range 1000000000000 }}{{ end }}",
			wantErr: "invalid template: range is not supported in recipe templates",
		},
		{
			name:    "user with non-constant name",
			text:    `{{ user .Name }}`,
			wantErr: `render template: line 1:3: at <user .Name>: error calling user: unknown variable "deb": declared variables are empty, mirror`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.text, data)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Render(%q) = %q, want error %q", tt.text, got, tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error mismatch\ngot:  %s\nwant: %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render(%q) failed: %v", tt.text, err)
			}
			if got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestRenderOutputLimit(t *testing.T) {
	// fmt caps a width at one million, so 17 actions make 17 MB.
	text := strings.Repeat(`{{ printf "%0*d" 1000000 0 }}`, 17)
	_, err := Render(text, TemplateData{})
	if err == nil {
		t.Fatal("Render of 17 MB succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "output exceeds 16777216 bytes") {
		t.Errorf("error = %q, want it to mention the output limit", err)
	}
}

func TestLoadTemplateFields(t *testing.T) {
	tests := []struct {
		name   string
		recipe string
		want   string
	}{
		{
			name:   "static field uses build-time value",
			recipe: baseRecipe + "[output]\ndirectory = \"out/{{ .HTTPIP }}\"\n",
			want: `recipe.toml:6:1: output.directory: .HTTPIP is only known during the build, so it cannot be used here:` +
				` use it in boot.command, vm.append, http.content, cloud_init data or provisioners`,
		},
		{
			name:   "static field with unknown variable",
			recipe: baseRecipe + "[ssh]\nusername = \"{{ .Vars.user }}\"\n",
			want:   `recipe.toml:6:1: ssh.username: unknown variable "user": the recipe declares no variables, add a [variables.user] table`,
		},
		{
			name:   "static field with parse error",
			recipe: baseRecipe + "[output]\nfilename = \"{{ .Name \"\n",
			want:   `recipe.toml:6:1: output.filename: invalid template: line 1: unclosed action`,
		},
		{
			name:   "size template with bad value",
			recipe: baseRecipe + "[variables.size]\ndefault = \"huge\"\n[vm]\ndisk_size = \"{{ .Vars.size }}\"\n",
			want: `recipe.toml:8:1: vm.disk_size: invalid size "huge": ` +
				`use a number with a unit such as "512MiB" or "10GiB"`,
		},
		{
			name:   "dynamic field with parse error",
			recipe: baseRecipe + "[boot]\ncommand = [\"<esc>\", \"{{ .HTTPIP \"]\n",
			want:   `recipe.toml:6:21: boot.command[1]: invalid template: line 1: unclosed action`,
		},
		{
			name:   "dynamic field with unknown variable",
			recipe: baseRecipe + "[cloud_init]\nuser_data = \"{{ .Vars.key }}\"\n",
			want:   `recipe.toml:6:1: cloud_init.user_data: unknown variable "key": the recipe declares no variables, add a [variables.key] table`,
		},
		{
			name:   "dynamic field with unknown field",
			recipe: baseRecipe + "[[provision]]\nshell = [\"echo {{ .HTTPAddr }}\"]\n",
			want:   `recipe.toml:6:10: provision[0].shell[0]: unknown template field .HTTPAddr: use .Name, .HTTPIP, .HTTPPort, .SSHPublicKey, .Vars`,
		},
		{
			name:   "dynamic map value",
			recipe: baseRecipe + "[http.content]\n\"preseed.cfg\" = \"{{ if }}\"\n",
			want:   `recipe.toml:6:1: http.content."preseed.cfg": invalid template: line 1: missing value for if`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRecipe(t, tt.recipe)
			if got := loadError(t, path, LoadOptions{}); got != tt.want {
				t.Errorf("error mismatch\ngot:  %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestLoadRendersStaticKeepsDynamic(t *testing.T) {
	path := writeRecipe(t, `name = "tmpl"

[variables.image]
default = "base.qcow2"

[variables.size]
default = "3GiB"

[variables.user]
default = "admin"

[source]
disk_image = "{{ .Vars.image }}"

[vm]
disk_size = "{{ .Vars.size }}"
kernel = "base.qcow2"
append = "console=ttyS0 url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"

[boot]
command = ["<esc>", "auto url=http://{{ .HTTPIP }}/{{ .Vars.user }}<enter>"]

[ssh]
username = '{{ user "user" }}'

[output]
filename = "{{ .Name }}-{{ .Vars.user }}"
`)
	r, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.VM.DiskSize != 3<<30 {
		t.Errorf("VM.DiskSize = %s, want 3GiB", r.VM.DiskSize)
	}
	if r.SSH.Username != "admin" {
		t.Errorf("SSH.Username = %q, want %q", r.SSH.Username, "admin")
	}
	if r.Output.Filename != "tmpl-admin" {
		t.Errorf("Output.Filename = %q, want %q", r.Output.Filename, "tmpl-admin")
	}
	if want := "auto url=http://{{ .HTTPIP }}/{{ .Vars.user }}<enter>"; r.Boot.Command[1] != want {
		t.Errorf("Boot.Command[1] = %q, want it left raw as %q", r.Boot.Command[1], want)
	}
	data := r.TemplateData()
	data.HTTPIP, data.HTTPPort = "10.0.2.2", 8080
	got, err := Render(r.VM.Append, data)
	if err != nil {
		t.Fatal(err)
	}
	if want := "console=ttyS0 url=http://10.0.2.2:8080/"; got != want {
		t.Errorf("rendered VM.Append = %q, want %q", got, want)
	}
}
