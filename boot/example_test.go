package boot_test

import (
	"fmt"

	"github.com/bakeimg/bake/boot"
)

func ExampleParse() {
	program, warnings, err := boot.Parse(`<esc><waitFor "boot:" 30s>install url=http://10.0.2.2:8123/<enter><leftCtrlOn>`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range program.Actions {
		switch a.Op {
		case boot.OpType:
			fmt.Printf("type %q\n", a.Text)
		case boot.OpWaitFor:
			fmt.Printf("waitFor %q for up to %s\n", a.Text, a.Duration)
		default:
			fmt.Printf("%s %s\n", a.Op, a.Key.QCode)
		}
	}
	for _, w := range warnings {
		fmt.Println(w)
	}
	// Output:
	// press esc
	// waitFor "boot:" for up to 30s
	// type "install url=http://10.0.2.2:8123/"
	// press ret
	// hold ctrl
	// boot command at byte offset 66: <leftCtrlOn> has no matching <leftCtrlOff>; the key stays down until the boot command ends
}

func ExampleParse_error() {
	_, _, err := boot.Parse("cat <<EOF >> f<entr>")
	fmt.Println(err)
	// Output:
	// boot command at byte offset 14: unknown key <entr>; did you mean <enter>?
}
