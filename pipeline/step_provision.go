package pipeline

import (
	"context"
	"fmt"

	"github.com/bakeimg/bake/provision"
	"github.com/bakeimg/bake/recipes"
)

// stepProvision runs the recipe's provisioners in order over SSH.
type stepProvision struct{}

func (*stepProvision) Name() string { return "provision" }

func (*stepProvision) Run(ctx context.Context, s *State) error {
	for i, p := range s.Recipe.Provision {
		rendered, err := renderProvisioner(s, p)
		if err != nil {
			return fmt.Errorf("provisioner %d: %w", i+1, err)
		}
		err = provision.Run(ctx, s.SSH, p, provision.Options{
			Index:       i + 1,
			Shell:       rendered.Shell,
			Local:       rendered.Local,
			Environment: rendered.Environment,
			Dir:         s.Recipe.Dir,
			Emitter:     s.Emitter,
		})
		if err != nil {
			return err
		}
		if p.ExpectDisconnect {
			if err := reconnect(ctx, s); err != nil {
				return fmt.Errorf("provisioner %d: failed to reconnect after expect_disconnect: %w", i+1, err)
			}
		}
	}
	return nil
}

// reconnect replaces the SSH connection after a provisioner that may have
// rebooted the guest, because later provisioners and the shutdown step
// need a live one.
// NOTE: a reboot command that returns before the guest's sshd stops can let
// this connect to the old sshd, which then drops the connection.
func reconnect(ctx context.Context, s *State) error {
	if s.SSH != nil {
		s.SSH.Close()
		s.SSH = nil
	}
	return (&stepConnect{}).Run(ctx, s)
}

func renderProvisioner(s *State, p recipes.Provisioner) (recipes.Provisioner, error) {
	out := p
	out.Shell = make([]string, len(p.Shell))
	for i, line := range p.Shell {
		r, err := s.render(line)
		if err != nil {
			return out, fmt.Errorf("shell line %d: %w", i+1, err)
		}
		out.Shell[i] = r
	}
	out.Local = make([]string, len(p.Local))
	for i, line := range p.Local {
		r, err := s.render(line)
		if err != nil {
			return out, fmt.Errorf("local line %d: %w", i+1, err)
		}
		out.Local[i] = r
	}
	out.Environment = make(map[string]string, len(p.Environment))
	for k, v := range p.Environment {
		r, err := s.render(v)
		if err != nil {
			return out, fmt.Errorf("environment %s: %w", k, err)
		}
		out.Environment[k] = r
	}
	return out, nil
}

func (*stepProvision) Cleanup(*State) error { return nil }
