package boot

import (
	"reflect"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"<esc><wait>install auto=true url=http://10.0.2.2:8080/preseed.cfg<enter>",
		"cat <<EOF >> f",
		"<entr>",
		"<wait0><wait-1s><wait1.5><wait99999999999999h>",
		`<waitFor "boot:" 30s><waitFor 'x\'y'><waitFor "`,
		"<leftCtrlOn><leftAltOn><del><leftAltOff>",
		"caf\u00e9\t\n\x00\xff",
		"<lt><gt><LT>",
		"<waitFor",
		"<waitFor \"a\\",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, _, err := Parse(text)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse(%q) returned a program with error %v", text, err)
			}
			return
		}
		for _, a := range p.Actions {
			if a.Pos < 0 || a.Pos > len(text) {
				t.Fatalf("action %+v has position outside the %d-byte input", a, len(text))
			}
		}
		again, _, err := Parse(p.String())
		if err != nil {
			t.Fatalf("re-parsing %q (from %q) failed: %v", p.String(), text, err)
		}
		if !reflect.DeepEqual(withoutPos(again.Actions), withoutPos(p.Actions)) {
			t.Fatalf("round trip of %q changed the program:\n got %+v\nwant %+v", text, again.Actions, p.Actions)
		}
	})
}
