package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// DeviceModelsHelp is HMP info qdm (qdev_print_devinfos(true)): every device model, the
// no-user ones included, under the headings -device help uses, each heading's models in
// case-insensitive name order, the no-user ones marked. It does not depend on the machine.
func DeviceModelsHelp() string { return printDevinfos(true) }

// printDevinfos is qdev_print_devinfos (softmmu/qdev-monitor.c): for each category that has
// models, its heading and the models' qdev_print_devinfo lines, a blank line between
// categories. Without showNoUser it is -device help.
func printDevinfos(showNoUser bool) string {
	var b strings.Builder
	for _, cat := range deviceCategories {
		var list []deviceRec
		for _, d := range deviceTable {
			if d.category == cat {
				list = append(list, d)
			}
		}
		if showNoUser {
			for _, d := range noUserTable {
				if d.category == cat {
					list = append(list, d)
				}
			}
		}
		if len(list) == 0 {
			continue
		}
		sort.SliceStable(list, func(i, j int) bool { return strcasecmp(list[i].name, list[j].name) < 0 })
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s devices:\n", cat)
		for _, d := range list {
			printDevinfo(&b, d, !isUserCreatable(d.name))
		}
	}
	return b.String()
}

// printDevinfo is qdev_print_devinfo's line.
func printDevinfo(b *strings.Builder, d deviceRec, noUser bool) {
	fmt.Fprintf(b, "name %q", d.name)
	if d.bus != "" {
		fmt.Fprintf(b, ", bus %s", d.bus)
	}
	if d.alias != "" {
		fmt.Fprintf(b, ", alias %q", d.alias)
	}
	if d.desc != "" {
		fmt.Fprintf(b, ", desc %q", d.desc)
	}
	if noUser {
		b.WriteString(", no-user")
	}
	b.WriteString("\n")
}

func isUserCreatable(name string) bool {
	_, ok := deviceIndex()[name]
	return ok
}

// strcasecmp compares as C's strcasecmp does in the C locale (ASCII letters folded to lower
// case), the order devinfo_cmp sorts by.
func strcasecmp(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := lower(a[i]), lower(b[i])
		if ca != cb {
			return int(ca) - int(cb)
		}
	}
	return len(a) - len(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
