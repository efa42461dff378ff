package catalog

// modeled lists the device types tlcvm gives behaviour. Every other device
// type of the catalogue is accepted (-device, device_add) and does nothing.
// The machine's owners keep this list true; docs are generated from it.
var modeled = map[string]bool{
	"isa-serial": true, // serial console (machine/)
	"PIIX4_PM":   true, // ACPI power button on pc
	"ICH9-LPC":   true, // ACPI power button on q35
}

// Modeled reports whether tlcvm models the device type with behaviour.
func Modeled(typename string) bool { return modeled[typename] }

// ModeledTypes lists the modeled device types in catalogue order.
func ModeledTypes() []string {
	var out []string
	for _, t := range typeTable {
		if modeled[t.name] {
			out = append(out, t.name)
		}
	}
	return out
}
