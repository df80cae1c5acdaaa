package event

import (
	"strings"
	"testing"
)

func TestStreamRedactorSplitSecret(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"one chunk", []string{"pw=hunter2 ok\n"}, "pw=" + Mask + " ok\n"},
		{"one byte at a time", strings.Split("pw=hunter2 ok\n", ""), "pw=" + Mask + " ok\n"},
		{"split in the middle", []string{"pw=hun", "ter2\n"}, "pw=" + Mask + "\n"},
		{"prefix that turns out not to be a secret", []string{"hunt", "ing\n"}, "hunting\n"},
		{"two secrets", []string{"hunter2 s3cr", "et!\n"}, Mask + " " + Mask + "\n"},
		{"repeated first letter", []string{"hhhunter2"}, "hh" + Mask},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			r := NewStreamRedactor([]string{"hunter2", "s3cret!", ""}, func(b []byte) { out.Write(b) })
			for _, c := range tt.chunks {
				r.Write([]byte(c))
			}
			r.Flush()
			if out.String() != tt.want {
				t.Errorf("output = %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestStreamRedactorHoldsOnlySecretPrefixes(t *testing.T) {
	var out strings.Builder
	r := NewStreamRedactor([]string{"hunter2"}, func(b []byte) { out.Write(b) })
	r.Write([]byte("boot: "))
	if out.String() != "boot: " || r.Pending() {
		t.Errorf("text that cannot start a secret was held back: passed %q, pending %v", out.String(), r.Pending())
	}
	r.Write([]byte("hu"))
	if out.String() != "boot: " || !r.Pending() {
		t.Errorf("a possible secret prefix was passed on: %q", out.String())
	}
}

func TestStreamRedactorWithoutSecrets(t *testing.T) {
	var out strings.Builder
	r := NewStreamRedactor(nil, func(b []byte) { out.Write(b) })
	r.Write([]byte("abc"))
	if out.String() != "abc" || r.Pending() {
		t.Errorf("output = %q, pending %v", out.String(), r.Pending())
	}
}
