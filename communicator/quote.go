package communicator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Quote returns s quoted for a POSIX shell as one word.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// envPrefix returns "export K='V'; " for every variable, sorted by name,
// because most sshd configurations reject the env request. A name that is
// not a shell identifier is an error.
func envPrefix(env map[string]string) (string, error) {
	var sb strings.Builder
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if !isShellName(name) {
			return "", fmt.Errorf("invalid environment variable name %q: use letters, digits and underscores, not starting with a digit", name)
		}
		sb.WriteString("export " + name + "=" + Quote(env[name]) + "; ")
	}
	return sb.String(), nil
}

func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
