package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bakeimg/bake/pipeline"
)

// options holds every flag. Flags may come before or after the command and
// between recipe paths: `bake --ci build a.toml --force` works.
type options struct {
	ci       bool
	json     string
	junit    string
	vars     multiFlag
	varFiles multiFlag
	force    bool
	accel    string
	onError  string
	parallel int
	only     string
	except   string
	failFast bool
	console  bool
	verbose  bool
	keepWork bool
	noColor  bool
	version  bool
	home     string

	asker *asker
}

func (o *options) onErrorFunc() func(context.Context, pipeline.Failure) pipeline.Decision {
	if o.asker == nil {
		return nil
	}
	return o.asker.ask
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

var errHelp = errors.New("help requested")

type flagSetFunc func(*options) *flag.FlagSet

func globalFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("bake", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.ci, "ci", false, "plain timestamped line output, no dashboard (the default when stdout is not a terminal)")
	fs.StringVar(&o.json, "json", "", "write events as JSON lines to `FILE` (\"-\" for stdout)")
	fs.StringVar(&o.junit, "junit", "", "write a JUnit XML report to `FILE`")
	fs.Var(&o.vars, "var", "set a recipe variable, as `name=value` (repeatable)")
	fs.Var(&o.varFiles, "var-file", "read variables from a TOML `FILE` of name = \"value\" lines (repeatable)")
	fs.BoolVar(&o.force, "force", false, "replace an existing output directory")
	fs.StringVar(&o.accel, "accel", "", "override vm.accelerator: auto, kvm or tcg")
	fs.StringVar(&o.onError, "on-error", "cleanup", "what to do when a build fails: cleanup (stop the VM, remove temp files), abort (keep the VM, disk and seed server as they are and print how to reach them, until Ctrl-C) or ask (prompt: retry the step, open an SSH shell, keep, or clean up)")
	fs.IntVar(&o.parallel, "parallel", 0, "run at most `N` builds at once (0: what the host's cores and memory allow)")
	fs.StringVar(&o.only, "only", "", "build only the recipes with these comma-separated `names`")
	fs.StringVar(&o.except, "except", "", "skip the recipes with these comma-separated `names`")
	fs.BoolVar(&o.failFast, "fail-fast", false, "stop all builds when one fails")
	fs.BoolVar(&o.console, "console", false, "with --ci, also print the guest's serial console")
	fs.BoolVar(&o.verbose, "verbose", false, "also print debug detail such as QEMU's command line")
	fs.BoolVar(&o.keepWork, "keep-work", false, "keep the work directory (disk, seed media) after the build")
	fs.BoolVar(&o.noColor, "no-color", false, "no colours in the dashboard (also set by NO_COLOR)")
	fs.StringVar(&o.home, "home", "", "cache and log `DIR` (default $BAKE_HOME or ~/.cache/bake)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	return fs
}

// parseFlags parses flags anywhere in args and returns the positional
// arguments in order.
func parseFlags(newSet flagSetFunc, args []string) (*options, []string, error) {
	o := &options{}
	fs := newSet(o)
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, nil, errHelp
			}
			return o, nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			rest = append(rest, args[1:]...)
			break
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
	return o, rest, o.check()
}

func (o *options) check() error {
	switch o.accel {
	case "", "auto", "kvm", "tcg":
	default:
		return fmt.Errorf("invalid --accel %q: use auto, kvm or tcg", o.accel)
	}
	switch o.onError {
	case "cleanup", "abort", "ask":
	default:
		return fmt.Errorf("invalid --on-error %q: use cleanup, abort or ask", o.onError)
	}
	if o.parallel < 0 {
		return fmt.Errorf("invalid --parallel %s: use a positive number, or 0 for automatic", strconv.Itoa(o.parallel))
	}
	for _, v := range o.vars {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return fmt.Errorf("invalid --var %q: use name=value", v)
		}
	}
	return nil
}

func (o *options) varMap() map[string]string {
	m := map[string]string{}
	for _, v := range o.vars {
		name, value, _ := strings.Cut(v, "=")
		m[name] = value
	}
	return m
}

func splitNames(s string) map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			m[n] = true
		}
	}
	return m
}

const usageHint = "Run 'bake --help' for usage.\n"

var usageText = `bake turns TOML recipes into machine images with QEMU.

Usage:
  bake [flags] build RECIPE...     build the images the recipes describe
  bake [flags] validate RECIPE...  check recipes without booting anything
  bake version                     print the version

Flags (before or after the command):
` + flagHelp() + `
Exit codes: 0 all builds succeeded, 1 a build failed, 2 invalid usage or
recipe, 130 interrupted by SIGINT, 143 terminated by SIGTERM.

Environment:
  BAKE_VAR_name       sets recipe variable "name" (below --var-file and --var)
  BAKE_HOME           cache and log directory (default ~/.cache/bake)
  BAKE_KEY_INTERVAL   pause between typed keys, overriding boot.key_interval
  BAKE_OVMF_DIR       directory with OVMF_CODE*.fd and OVMF_VARS*.fd for EFI builds
  NO_COLOR            disables colours in the dashboard

Recipes are documented in docs/recipes.md.
`

func flagHelp() string {
	var b strings.Builder
	fs := globalFlagSet(&options{})
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}
