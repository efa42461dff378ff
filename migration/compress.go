package migration

import (
	"bytes"
	"compress/zlib"
	"io"
	"sync/atomic"
)

// Compression (capability compress, compress-level; QEMU 7.2's compress threads): every
// non-zero page is sent deflated (zlib format) in a COMPRESS_PAGE record, except once
// xbzrle has taken over (stage 2 on), in postcopy and through multifd channels, as QEMU's
// save_page_use_compression decides. tlcvm compresses on the checkpoint thread itself:
// compress-threads and decompress-threads are accepted without effect, and no page ever
// finds every thread busy (busy stays 0).

// compressor deflates pages (the checkpoint thread only) and counts them.
type compressor struct {
	level int
	buf   bytes.Buffer
	zw    *zlib.Writer
	src   [pageSize]byte // the page copied first: the guest may change it meanwhile

	pages, size atomic.Int64 // pages compressed, bytes they took (record bodies)
}

func newCompressor(level int) *compressor {
	c := &compressor{level: level}
	c.zw, _ = zlib.NewWriterLevel(&c.buf, level) // level is 0..9, checked by the parameters
	return c
}

// compress deflates a copy of page (as QEMU's do_compress_ram_page: a page changing under
// zlib would not match its own checksum); the result aliases the compressor's buffer.
func (c *compressor) compress(page []byte) ([]byte, error) {
	copy(c.src[:], page)
	c.buf.Reset()
	c.zw.Reset(&c.buf)
	if _, err := c.zw.Write(c.src[:]); err != nil {
		return nil, err
	}
	if err := c.zw.Close(); err != nil {
		return nil, err
	}
	c.pages.Add(1)
	c.size.Add(int64(c.buf.Len()) + 4)
	return c.buf.Bytes(), nil
}

// CompressionInfo is query-migrate's compression.
type CompressionInfo struct {
	Pages, Busy, CompressedSize int64
	BusyRate, CompressionRate   float64
}

func (c *compressor) info() *CompressionInfo {
	pages, size := c.pages.Load(), c.size.Load()
	in := &CompressionInfo{Pages: pages, CompressedSize: size}
	if size > 0 {
		in.CompressionRate = float64(pages*pageSize) / float64(size)
	}
	return in
}

// inflatePage is the destination's decompress_data: the record's data must inflate to
// exactly one page.
func inflatePage(data []byte, page []byte) error {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return errorf(ErrLoad, "decompress data failed")
	}
	if _, err := io.ReadFull(zr, page); err != nil {
		return errorf(ErrLoad, "decompress data failed")
	}
	var extra [1]byte
	if n, _ := zr.Read(extra[:]); n != 0 {
		return errorf(ErrLoad, "decompress data failed")
	}
	if err := zr.Close(); err != nil {
		return errorf(ErrLoad, "decompress data failed")
	}
	return nil
}
