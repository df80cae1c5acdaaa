package recipes

import (
	"strings"
	"testing"
)

func TestLoadBootCommandErrors(t *testing.T) {
	tests := []struct {
		name    string
		command string
		want    string
	}{
		{
			name:    "unknown key",
			command: `["<esc>", "x<entr>"]`,
			want: `recipe.toml:7:21: boot.command[1]: invalid boot command at byte 1 of the rendered element:` +
				` unknown key <entr>; did you mean <enter>?`,
		},
		{
			name:    "no US key",
			command: `["héllo"]`,
			want: `recipe.toml:7:12: boot.command[0]: invalid boot command at byte 1 of the rendered element:` +
				` character 'é' (U+00E9) has no key on a US keyboard: the boot command can type only printable ASCII`,
		},
		{
			name:    "secret masked",
			command: `["<{{ .Vars.pw }}>"]`,
			want: `recipe.toml:7:12: boot.command[0]: invalid boot command at byte 0 of the rendered element:` +
				` unknown key <********>; see docs/boot-command.md for key names, or write <lt>********> to type the text literally`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recipe := baseRecipe + "\n[boot]\ncommand = " + tt.command + "\n" +
				"[variables.pw]\ndefault = \"zzsecret\"\nsensitive = true\n"
			got := loadError(t, writeRecipe(t, recipe), LoadOptions{})
			if got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestLoadBootCommandUnsetVariable(t *testing.T) {
	recipe := baseRecipe + `
[variables.iso]
description = "no default"
[boot]
command = ["url={{ .Vars.iso }}<enter>"]
`
	got := loadError(t, writeRecipe(t, recipe), LoadOptions{})
	want := "recipe.toml:6:12: variables.iso: no default and no value: set it with --var iso=VALUE," +
		" a variable file or BAKE_VAR_iso"
	if got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoadBootCommandPlaceholders(t *testing.T) {
	recipe := baseRecipe + `
[boot]
command = ["<esc><wait>", "url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ key={{ .SSHPublicKey }}<enter>"]
`
	if _, err := Load(writeRecipe(t, recipe), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBootCommandWarnings(t *testing.T) {
	recipe := baseRecipe + `
[boot]
command = ["<esc>", "<leftShiftOn>abc"]
`
	r, err := Load(writeRecipe(t, recipe), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 {
		t.Fatalf("warnings = %q, want one", r.Warnings)
	}
	want := "recipe.toml:7:21: boot.command[1]: <leftShiftOn> has no matching <leftShiftOff>; the key stays down until the boot command ends"
	if !strings.HasSuffix(r.Warnings[0], want) {
		t.Errorf("warning:\n%s\nwant it to end with:\n%s", r.Warnings[0], want)
	}
}
