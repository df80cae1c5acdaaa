package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestFindEFIInOVMFDir(t *testing.T) {
	tests := []struct {
		name     string
		files    []string
		wantCode string
		wantVars string
	}{
		{
			name:     "4M layout preferred",
			files:    []string{"OVMF_CODE.fd", "OVMF_VARS.fd", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"},
			wantCode: "OVMF_CODE_4M.fd",
			wantVars: "OVMF_VARS_4M.fd",
		},
		{
			name:     "2M layout",
			files:    []string{"OVMF_CODE.fd", "OVMF_VARS.fd", "OVMF_CODE_4M.fd"},
			wantCode: "OVMF_CODE.fd",
			wantVars: "OVMF_VARS.fd",
		},
		{name: "code without vars", files: []string{"OVMF_CODE_4M.fd"}},
		{name: "empty directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv(EnvOVMFDir, dir)
			code, vars, err := FindEFI()
			if tt.wantCode == "" {
				want := fmt.Sprintf("EFI firmware (OVMF) not found in BAKE_OVMF_DIR=%q: put OVMF_CODE_4M.fd and OVMF_VARS_4M.fd there, "+
					"or unset BAKE_OVMF_DIR and install the Debian package ovmf (apt-get install ovmf), or set vm.firmware = \"bios\"", dir)
				if err == nil || err.Error() != want {
					t.Errorf("error = %v\nwant    %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if code != filepath.Join(dir, tt.wantCode) {
				t.Errorf("code = %q, want %s in %s", code, tt.wantCode, dir)
			}
			if vars != filepath.Join(dir, tt.wantVars) {
				t.Errorf("vars = %q, want %s in %s", vars, tt.wantVars, dir)
			}
		})
	}
}
