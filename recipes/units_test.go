package recipes

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "1073741824", want: 1 << 30},
		{in: "512MiB", want: 512 << 20},
		{in: "512M", want: 512 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "2 GiB", want: 2 << 30},
		{in: "1.5GiB", want: 3 << 29},
		{in: "64TiB", want: 64 << 40},
		{in: "100B", want: 100},
		{in: "", wantErr: `invalid size "": use a number with a unit such as "512MiB" or "10GiB"`},
		{in: "GiB", wantErr: `invalid size "GiB": use a number with a unit such as "512MiB" or "10GiB"`},
		{in: "-1", wantErr: `invalid size "-1": must not be negative`},
		{in: "0", wantErr: `invalid size "0": must be greater than zero: use a size such as "512MiB", or remove the key for its default`},
		{in: "0.5", wantErr: `invalid size "0.5": not a whole number of bytes`},
		{in: "65TiB", wantErr: `invalid size "65TiB": larger than the 64TiB maximum`},
		{in: "99999999999999999999999999GiB", wantErr: `invalid size "99999999999999999999999999GiB": larger than the 64TiB maximum`},
		{in: "NaN", wantErr: `invalid size "NaN": use a number with a unit such as "512MiB" or "10GiB"`},
		{in: "0x10", wantErr: `invalid size "0x10": use a number with a unit such as "512MiB" or "10GiB"`},
		{in: "4gib", wantErr: `invalid size "4gib": unknown unit "gib", use B, KiB, MiB, GiB or TiB`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("ParseSize(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSize(%q) failed: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{2 << 30, "2GiB"},
		{3 << 29, "1536MiB"},
		{1000, "1000B"},
		{64 << 40, "64TiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}
