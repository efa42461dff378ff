package main

import (
	"errors"
	"fmt"
	"log"
	"regexp"
	"strings"
)

// deviceInfo is one line of `-device help`: a device type a user may create, its bus type,
// its alias and description, and whether QEMU takes it once the machine runs (device_add).
type deviceInfo struct {
	name, bus, alias, desc string
	hotpluggable           bool
	category               string // the heading -device help and info qdm list it under
}

// helpLine is qdev_print_devinfo's format: name "X"[, bus B][, alias "A"][, desc "D"][, no-user].
var helpLine = regexp.MustCompile(`^name "([^"]+)"(?:, bus ([^,]+))?(?:, alias "([^"]+)")?(?:, desc "([^"]*)")?(, no-user)?$`)

// descNotPluggable is qdev_get_device_class's refusal of a type that is not user-creatable, or
// (once the machine is ready) not hotpluggable; QEMU checks it before anything else about the
// device, so any other answer to a bare device_add means the type is hotpluggable.
const descNotPluggable = "Parameter 'driver' expects a pluggable device type"

// captureDevices parses `-device help` and asks the running QEMU to device_add each type and
// each alias, bare: the aliases must resolve (same answer as the type's name), and the
// answers say which types are hotpluggable.
func (c *catalog) captureDevices(s *session, lg *log.Logger) error {
	seen := map[string]bool{}
	for _, l := range strings.Split(c.deviceHelp, "\n") {
		if !strings.HasPrefix(l, "name ") {
			continue
		}
		m := helpLine.FindStringSubmatch(l)
		if m == nil {
			return fmt.Errorf("unparsed -device help line %q", l)
		}
		if m[5] != "" {
			return fmt.Errorf("-device help lists a no-user device: %q", l)
		}
		d := &deviceInfo{name: m[1], bus: m[2], alias: m[3], desc: m[4]}
		if seen[d.name] || (d.alias != "" && seen[d.alias]) {
			return fmt.Errorf("-device help names %q twice", l)
		}
		seen[d.name], seen[d.alias] = true, d.alias != ""
		if t := c.byName[d.name]; t == nil || t.abstract || !c.isA(d.name, "device") {
			return fmt.Errorf("-device help lists %s, not a concrete device type", d.name)
		}
		if d.alias != "" && c.byName[d.alias] != nil {
			return fmt.Errorf("alias %s of %s is also a type name", d.alias, d.name)
		}
		var err error
		if d.hotpluggable, err = pluggable(s, d.name); err != nil {
			return err
		}
		if d.alias != "" {
			viaAlias, err := pluggable(s, d.alias)
			if err != nil {
				return err
			}
			if viaAlias != d.hotpluggable {
				return fmt.Errorf("device_add %s and device_add %s disagree", d.alias, d.name)
			}
		}
		c.devices = append(c.devices, d)
	}
	if len(c.devices) == 0 {
		return errors.New("no devices in -device help")
	}
	lg.Printf("%d user-creatable devices", len(c.devices))
	return c.captureQdm(s, lg)
}

// captureQdm asks HMP info qdm (qdev_print_devinfos(true)), which lists every device model:
// -device help's, each under the same heading, and the no-user ones among them. It records
// each model's heading and the no-user models; info qdm without its no-user lines must be
// -device help.
func (c *catalog) captureQdm(s *session, lg *log.Logger) error {
	r, err := s.call("human-monitor-command", map[string]any{"command-line": "info qdm"})
	if err != nil {
		return err
	}
	text := strings.ReplaceAll(r.String(), "\r\n", "\n")
	byName := map[string]*deviceInfo{}
	for _, d := range c.devices {
		byName[d.name] = d
	}
	var user []string
	category := ""
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case l == "":
			user = append(user, l)
			continue
		case strings.HasSuffix(l, " devices:"):
			category = strings.TrimSuffix(l, " devices:")
			c.categories = append(c.categories, category)
			user = append(user, l)
			continue
		}
		m := helpLine.FindStringSubmatch(l)
		if m == nil || category == "" {
			return fmt.Errorf("unparsed info qdm line %q", l)
		}
		if m[5] == "" {
			d := byName[m[1]]
			if d == nil || d.category != "" {
				return fmt.Errorf("info qdm lists %s, not once in -device help", m[1])
			}
			d.category = category
			user = append(user, l)
			continue
		}
		d := &deviceInfo{name: m[1], bus: m[2], alias: m[3], desc: m[4], category: category}
		if t := c.byName[d.name]; t == nil || t.abstract || !c.isA(d.name, "device") || byName[d.name] != nil {
			return fmt.Errorf("info qdm lists %s as no-user, not a concrete device type", d.name)
		}
		byName[d.name] = d
		c.noUser = append(c.noUser, d)
	}
	if got := strings.Join(user, "\n") + "\n"; got != c.deviceHelp {
		return errors.New("info qdm without its no-user lines is not -device help")
	}
	lg.Printf("%d no-user devices", len(c.noUser))
	return nil
}

// pluggable asks device_add {"driver": name}. A process that dies on it got past the
// pluggable check, which QEMU makes first.
func pluggable(s *session, name string) (bool, error) {
	_, err := s.call("device_add", map[string]any{"driver": name})
	var qe *qmpError
	switch {
	case err == nil, errors.Is(err, errDied):
		return true, nil
	case errors.As(err, &qe) && qe.Desc == "'"+name+"' is not a valid device model name":
		return false, fmt.Errorf("device_add %s: QEMU does not know the name", name)
	case errors.As(err, &qe):
		return qe.Desc != descNotPluggable, nil
	}
	return false, err
}
