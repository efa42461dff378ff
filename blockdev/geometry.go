package blockdev

// Geometry is a disk's CHS geometry and BIOS translation as hd_geometry_guess
// (hw/block/hd-geometry.c) makes it for a drive whose device was given none: QEMU's
// standard physical geometry for the size (guess_chs_for_size: 16 heads, 63 sectors, the
// cylinders that fit, from 2 to 16383) and the translation that geometry needs
// (hd_bios_chs_auto_trans). QEMU first tries the geometry of a partition table in the
// image's first sector (guess_disk_lchs); tlcvm does not, so an image whose MBR ends its
// partitions on other head or sector counts gets the standard geometry here.
type Geometry struct {
	Cyls, Heads, Secs int
	Trans             string // "none" or "lba", as the bios-chs-trans property prints
}

// GuessGeometry is hd_geometry_guess for a medium of size bytes.
func GuessGeometry(size int64) Geometry {
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
