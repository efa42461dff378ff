package blockdev

// Test hooks (compiled only into this package's tests).

// WriteQcow2 writes a fresh qcow2 image to f, as blockdev-create does.
var WriteQcow2 = writeQcow2
