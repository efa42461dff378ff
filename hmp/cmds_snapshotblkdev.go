package hmp

import "errors"

// snapshot_blkdev: hmp_snapshot_blkdev (block/monitor/block-hmp-cmds.c), blockdev-snapshot-sync
// of a device's root with mode existing (-n) or absolute-paths. The snapshot file is
// required today: without it QEMU reports the missing parameter itself.

func snapshotBlkdevCommands() []Command {
	return []Command{
		{Name: "snapshot_blkdev", Args: "reuse:-n,device:B,snapshot-file:s?,format:s?",
			Params: "[-n] device [new-image-file] [format]",
			Help: "initiates a live snapshot\n\t\t\tof device. If a new image file is specified, the\n\t\t\t" +
				"new image file will become the new root image.\n\t\t\tIf format is specified, the snapshot file will\n\t\t\t" +
				"be created in that format.\n\t\t\tThe default format is qcow2.  The -n flag requests QEMU\n\t\t\t" +
				"to reuse the image found in new-image-file, instead of\n\t\t\trecreating it from scratch.",
			Run: func(c *Call) {
				device, _ := c.Args.Str("device")
				file, ok := c.Args.Str("snapshot-file")
				if !ok {
					c.Fail(errors.New("Parameter 'snapshot-file' is missing"))
					return
				}
				mode := "absolute-paths"
				if c.Args.Bool("reuse") {
					mode = "existing"
				}
				args := map[string]any{"device": device, "snapshot-file": file, "mode": mode}
				if f, ok := c.Args.Str("format"); ok {
					args["format"] = f
				}
				c.Do("blockdev-snapshot-sync", args)
			}},
	}
}
