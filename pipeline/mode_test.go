package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bakeimg/bake/event"
)

func TestBuildSlowBoot(t *testing.T) {
	fx := newFixture(t, "echo-keys,slow-boot=1s")
	r := fx.recipe(t, recipeOptions{formats: `"qcow2"`})
	rec := &recorder{}
	res := fx.run(context.Background(), r, rec)
	if res.Err != nil {
		t.Fatalf("build failed: %v", res.Err)
	}
	fx.assertNoLeftovers(t, res)

	retried := false
	for _, msg := range rec.messages(event.Info) {
		if strings.HasPrefix(msg, "SSH not ready yet (attempt 1): connection reset") {
			retried = true
		}
	}
	if !retried {
		t.Errorf("info events %q lack the first failed SSH attempt", rec.messages(event.Info))
	}
	if m := readManifest(t, fx.out); m.StopMethod != "guest" {
		t.Errorf("manifest stop_method = %q, want guest", m.StopMethod)
	}
}

func TestBuildRebootDuringProvision(t *testing.T) {
	tests := []struct {
		name      string
		provision string
		wantErr   string // empty: the build succeeds
	}{
		{
			name:      "unexpected",
			provision: "[[provision]]\nshell = [\"echo first\"]\n",
			wantErr:   `provision: provisioner 1 (shell): command "echo first" failed: ssh: connection dropped before the command exited`,
		},
		{
			name: "expected",
			provision: "[[provision]]\nshell = [\"echo first\"]\nexpect_disconnect = true\n\n" +
				"[[provision]]\nshell = [\"echo after reboot > after\"]\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, "reboot-during-provision")
			r := fx.recipe(t, recipeOptions{provision: tt.provision, formats: `"qcow2"`})
			res := fx.run(context.Background(), r, nil)
			fx.assertNoLeftovers(t, res)
			if tt.wantErr != "" {
				if res.Err == nil || !strings.HasPrefix(res.Err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want prefix %q", res.Err, tt.wantErr)
				}
				fx.assertNoOutput(t)
				return
			}
			if res.Err != nil {
				t.Fatalf("build failed: %v", res.Err)
			}
			if b, err := os.ReadFile(filepath.Join(fx.fake.GuestDir(), "after")); err != nil || string(b) != "after reboot\n" {
				t.Errorf("provisioner after the reboot left %q, %v", b, err)
			}
			if !slices.Contains(fx.fake.Commands(), "poweroff") {
				t.Errorf("SSH commands %q lack poweroff", fx.fake.Commands())
			}
		})
	}
}
