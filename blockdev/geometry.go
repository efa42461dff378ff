package blockdev

import "encoding/binary"

// Geometry is a disk's CHS geometry and BIOS translation as hd_geometry_guess
// (hw/block/hd-geometry.c) makes it for a drive whose device was given none. First the
// logical geometry of an MBR partition table in the medium's first sector
// (guess_disk_lchs: the first partition with sectors and an end head, its end head + 1
// heads and end sector sectors, the cylinders that fit, 1 to 16383): with at most 16
// heads it is the geometry (translation none); otherwise, or without one, QEMU's standard
// physical geometry for the size (guess_chs_for_size: 16 heads, 63 sectors, the cylinders
// that fit, from 2 to 16383) with the translation it needs (hd_bios_chs_auto_trans; after
// a guess of more than 16 heads "large" up to 131072 cylinders×heads, else "lba").
type Geometry struct {
	Cyls, Heads, Secs int
	Trans             string // "none", "lba" or "large", as the bios-chs-trans property prints
}

// GuessGeometry is hd_geometry_guess for a medium of size bytes whose first sector is mbr
// (nil: it could not be read).
func GuessGeometry(size int64, mbr []byte) Geometry {
	cyls, heads, secs, ok := guessLCHS(size/512, mbr)
	switch {
	case ok && heads <= 16:
		return Geometry{Cyls: cyls, Heads: heads, Secs: secs, Trans: "none"}
	case ok:
		g := standardGeometry(size)
		g.Trans = "lba"
		if g.Cyls*g.Heads <= 131072 {
			g.Trans = "large"
		}
		return g
	}
	return standardGeometry(size)
}

// guessLCHS is guess_disk_lchs over the first sector.
func guessLCHS(sectors int64, mbr []byte) (cyls, heads, secs int, ok bool) {
	if len(mbr) < 512 || mbr[510] != 0x55 || mbr[511] != 0xaa {
		return 0, 0, 0, false
	}
	for i := 0; i < 4; i++ {
		p := mbr[0x1be+16*i : 0x1be+16*(i+1)]
		endHead, endSector := int(p[5]), int(p[6]&63)
		if binary.LittleEndian.Uint32(p[12:]) == 0 || endHead == 0 || endSector == 0 {
			continue
		}
		c := sectors / int64((endHead+1)*endSector)
		if c < 1 || c > 16383 {
			continue
		}
		return int(c), endHead + 1, endSector, true
	}
	return 0, 0, 0, false
}

// standardGeometry is guess_chs_for_size with hd_bios_chs_auto_trans.
func standardGeometry(size int64) Geometry {
	cyls := size / 512 / (16 * 63)
	switch {
	case cyls > 16383:
		cyls = 16383
	case cyls < 2:
		cyls = 2
	}
	g := Geometry{Cyls: int(cyls), Heads: 16, Secs: 63, Trans: "none"}
	if g.Cyls > 1024 {
		g.Trans = "lba"
	}
	return g
}
