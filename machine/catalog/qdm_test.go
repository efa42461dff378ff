package catalog

import (
	"errors"
	"strings"
	"testing"
)

// TestPrintDevinfos: qdev_print_devinfos rebuilt from the tables gives -device help as the
// binary printed it, and info qdm adds exactly the no-user models, each marked once.
func TestPrintDevinfos(t *testing.T) {
	if got := printDevinfos(false); got != DeviceHelp() {
		t.Errorf("printDevinfos(false) is not -device help:\n%s", got)
	}
	qdm := DeviceModelsHelp()
	lines := strings.Split(qdm, "\n")
	var noUser []string
	for _, l := range lines {
		if strings.HasSuffix(l, ", no-user") {
			noUser = append(noUser, l)
		}
	}
	if len(noUser) != len(noUserTable) || len(noUserTable) == 0 {
		t.Errorf("info qdm marks %d models no-user; the table holds %d", len(noUser), len(noUserTable))
	}
	for _, want := range []string{
		`name "ICH9-LPC", bus PCI, desc "ICH9 LPC bridge", no-user`,
		`name "sgx-epc", desc "SGX EPC section", no-user`,
		`name "ich9-ahci", bus PCI, alias "ahci"`,
	} {
		if !strings.Contains(qdm, "\n"+want+"\n") {
			t.Errorf("info qdm lacks %q", want)
		}
	}
}

// TestNoUserDeviceClass: -device and device_add of a no-user model get QEMU's refusal, and
// the model is no user-creatable device.
func TestNoUserDeviceClass(t *testing.T) {
	for _, d := range noUserTable {
		if _, ok := LookupDevice(d.name); ok {
			t.Errorf("LookupDevice(%q) finds a no-user model", d.name)
		}
		for _, running := range []bool{false, true} {
			_, err := DeviceClass(d.name, running)
			if !errors.Is(err, ErrNotPluggable) || err.Error() != "Parameter 'driver' expects a pluggable device type" {
				t.Errorf("DeviceClass(%q, %v) = %v", d.name, running, err)
			}
		}
	}
}

func TestStrcasecmp(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		sign int
	}{{"ICH9-LPC", "i82801b11-bridge", 1}, {"ICH9-LPC", "ioh3420", -1}, {"abc", "ABC", 0}, {"ab", "abc", -1}, {"b", "a", 1}} {
		got := strcasecmp(tc.a, tc.b)
		if (got > 0) != (tc.sign > 0) || (got < 0) != (tc.sign < 0) {
			t.Errorf("strcasecmp(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.sign)
		}
	}
}
