package recipes

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
)

// Size is a byte count written in a recipe as "512MiB", "2GiB", "10G" or a
// plain number of bytes. K, M, G and T are binary units, as in qemu-img.
type Size int64

// Duration is a time.Duration written in a recipe as a Go duration ("90s",
// "1m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit such as \"90s\" or \"30m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"K": 1 << 10, "KiB": 1 << 10,
	"M": 1 << 20, "MiB": 1 << 20,
	"G": 1 << 30, "GiB": 1 << 30,
	"T": 1 << 40, "TiB": 1 << 40,
}

// sizePattern matches a decimal number, optionally with a fraction, and a
// unit. Signs, exponents and hexadecimal are rejected on purpose.
var sizePattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)$`)

// MaxSize is the largest size a recipe may name: 64 TiB. Larger sizes are
// rejected as typing mistakes before they reach qemu-img.
const MaxSize Size = 64 << 40

// ParseSize parses "2GiB", "512M", "1.5GiB" or "1073741824".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("invalid size %q: must not be negative", s)
		}
		return 0, fmt.Errorf("invalid size %q: use a number with a unit such as \"512MiB\" or \"10GiB\"", s)
	}
	factor, ok := sizeUnits[m[2]]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q, use B, KiB, MiB, GiB or TiB", s, m[2])
	}

	// big.Rat keeps the arithmetic exact however many digits are written.
	n, _ := new(big.Rat).SetString(m[1])
	n.Mul(n, new(big.Rat).SetInt64(factor))
	if !n.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	if n.Sign() == 0 {
		return 0, fmt.Errorf("invalid size %q: must be greater than zero: use a size such as \"512MiB\", or remove the key for its default", s)
	}
	if n.Cmp(new(big.Rat).SetInt64(int64(MaxSize))) > 0 {
		return 0, fmt.Errorf("invalid size %q: larger than the %s maximum", s, MaxSize)
	}
	return Size(n.Num().Int64()), nil
}

// UnmarshalText parses a size string.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText formats s like String.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MiB returns the size in whole mebibytes, rounded up.
func (s Size) MiB() int64 { return (int64(s) + (1<<20 - 1)) >> 20 }

// String formats s with the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(s) >= u.factor && int64(s)%u.factor == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.factor, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", int64(s))
}
