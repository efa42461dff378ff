package harness

import "testing"

func TestModuleNoise(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want []string // package named per match
	}{
		{"qemu-system-x86_64: -chardev null: chardev: no id specified\n", nil},
		{"qemu: module ui-ui-gtk not found, do you want to install qemu-system-gui package?\n" +
			"qemu: module ui-ui-sdl not found, do you want to install qemu-system-gui package?\n" +
			"qemu-system-x86_64: -chardev null: chardev: no id specified\n", []string{"qemu-system-gui", "qemu-system-gui"}},
		{"qemu: module block-block-curl not found\n", []string{""}},
	} {
		m := moduleNoise.FindAllStringSubmatch(tc.out, -1)
		if len(m) != len(tc.want) {
			t.Errorf("%q: %d matches, want %d", tc.out, len(m), len(tc.want))
			continue
		}
		for i, g := range m {
			if g[2] != tc.want[i] {
				t.Errorf("%q: match %d names %q, want %q", tc.out, i, g[2], tc.want[i])
			}
		}
	}
}
