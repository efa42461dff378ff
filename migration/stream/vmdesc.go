package stream

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
)

// The vmdesc: QEMU's JSON description of the device sections, written after EOF so that
// scripts/analyze-migration.py can decode them. QEMU 7.2 writes it with QJSON's ", " and
// ": " separators, keys in this order, and no "configuration" member:
//
//	{"page_size": 4096, "devices": [{"name": "cpu/0", "instance_id": 0, "vmsd_name": "cpu/0",
//	  "version": 1, "fields": [{"name": "length", "type": "uint32", "size": 4},
//	  {"name": "state", "type": "buffer", "size": 1234}]}, …]}

// vmdesc is the subset of the JSON the Reader checks.
type vmdesc struct {
	PageSize *uint64 `json:"page_size"`
	Devices  []struct {
		Name       string `json:"name"`
		InstanceID uint32 `json:"instance_id"`
		Version    uint32 `json:"version"`
		Fields     []struct {
			Name string `json:"name"`
			Type string `json:"type"`
			Size uint64 `json:"size"`
		} `json:"fields"`
	} `json:"devices"`
}

func appendField(b []byte, name, typ string, size uint64) []byte {
	b = append(b, `{"name": `...)
	b = strconv.AppendQuote(b, name)
	b = append(b, `, "type": `...)
	b = strconv.AppendQuote(b, typ)
	b = append(b, `, "size": `...)
	b = strconv.AppendUint(b, size, 10)
	return append(b, '}')
}

func appendDevice(b []byte, name string, instance, version uint32) []byte {
	b = append(b, `{"name": `...)
	b = appendJSONString(b, name)
	b = append(b, `, "instance_id": `...)
	b = strconv.AppendUint(b, uint64(instance), 10)
	b = append(b, `, "vmsd_name": `...)
	b = appendJSONString(b, name)
	b = append(b, `, "version": `...)
	b = strconv.AppendUint(b, uint64(version), 10)
	return append(b, `, "fields": [`...)
}

// appendJSONString appends s as a JSON string (encoding/json's escaping: valid for any
// bytes, never a raw NUL, which would mislead the analyser's search for the vmdesc).
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// buildVMDesc returns the vmdesc JSON for the device sections and the integrity section.
// The analyser finds the JSON as the first '{' after the last NUL byte of the file's tail
// and checks that the byte five before it is 0x06: the be32 length just before the JSON
// must therefore not contain '{' after its last zero byte; trailing blanks are added to the
// JSON until it does not.
func buildVMDesc(devs []devRecord, config []byte) []byte {
	b := make([]byte, 0, 256+len(config)+160*len(devs))
	b = append(b, `{"page_size": `...)
	b = strconv.AppendUint(b, PageSize, 10)
	if config != nil {
		b = append(b, `, "configuration": `...)
		b = append(b, config...)
	}
	b = append(b, `, "devices": [`...)
	for _, d := range devs {
		b = appendDevice(b, d.desc.Name, d.desc.Instance, d.desc.Version)
		b = appendField(b, "length", "uint32", 4)
		b = append(b, ", "...)
		b = appendField(b, "state", "buffer", uint64(d.size))
		b = append(b, "]}, "...)
	}
	b = appendDevice(b, IntegrityIDStr, 0, integrityVersion)
	b = appendField(b, "stream-length", "uint64", 8)
	b = append(b, ", "...)
	b = appendField(b, "stream-crc32c", "uint32", 4)
	b = append(b, ", "...)
	b = appendField(b, "vmdesc-length", "uint32", 4)
	b = append(b, ", "...)
	b = appendField(b, "vmdesc-crc32c", "uint32", 4)
	b = append(b, "]}]}"...)
	for lengthHasBrace(uint32(len(b))) {
		b = append(b, ' ')
	}
	return b
}

func lengthHasBrace(n uint32) bool {
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], n)
	for _, c := range l {
		if c == '{' {
			return true
		}
	}
	return false
}

// checkVMDesc parses the vmdesc and checks it describes exactly the device sections read,
// with their sizes, and the integrity section.
func checkVMDesc(raw []byte, devs []devRecord) error {
	var d vmdesc
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("vmdesc is not valid JSON: %v", err)
	}
	if d.PageSize == nil || *d.PageSize != PageSize {
		return fmt.Errorf("vmdesc page_size is not %d", PageSize)
	}
	if len(d.Devices) != len(devs)+1 {
		return fmt.Errorf("vmdesc describes %d sections, the stream has %d", len(d.Devices), len(devs)+1)
	}
	for i, got := range d.Devices {
		if i == len(devs) {
			if got.Name != IntegrityIDStr || got.InstanceID != 0 || got.Version != integrityVersion || len(got.Fields) != 4 {
				return fmt.Errorf("vmdesc: last entry does not describe %s", IntegrityIDStr)
			}
			break
		}
		want := devs[i]
		if got.Name != want.desc.Name || got.InstanceID != want.desc.Instance || got.Version != want.desc.Version ||
			len(got.Fields) != 2 || got.Fields[0].Size != 4 || got.Fields[1].Size != uint64(want.size) {
			return fmt.Errorf("vmdesc entry %d does not describe section %q instance %d", i, want.desc.Name, want.desc.Instance)
		}
	}
	return nil
}
