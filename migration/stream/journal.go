package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// A Journal makes a set of positional writes to a checkpoint file take effect all at once:
// the writes are appended to a journal after the file's end, committed by one small write
// at the end of the file, then applied in place, and the journal is cut off. A process
// killed at any moment leaves the file either as it was (the journal is not committed: it
// lies after the checkpoint and is ignored) or committed (RecoverJournal, which every
// reader of tlcvm's checkpoints calls first, applies it again: applying is idempotent).
// See the package doc, "Incremental checkpoints".
//
//	start ─> ┌────────────────────────────────────────────────────────────┐
//	         │ record: be64 offset, be32 length, length bytes            │ (repeated, in
//	         │ …                                                          │  write order)
//	         ├────────────────────────────────────────────────────────────┤
//	  64 ──> │ trailer: "TLCVMJNL" be32 1  be32 0  be64 start  be64 len  │ the commit:
//	 aligned │   be64 end  be64 records  be32 CRC32C(records)  be32 0     │ 64 bytes, the
//	         │   be32 0  be32 CRC32C(trailer bytes 0..59)                 │ file's last
//	         └────────────────────────────────────────────────────────────┘
//
// end is the file's size once applied (the new checkpoint's end). The guarantee is against
// the death of the process (the page cache keeps the order of completed writes); with
// Sync the journal is also fsync'ed before and after the commit, for power loss.
type Journal struct {
	f       *os.File
	start   uint64 // where the records begin
	pos     uint64 // next record's offset
	crc     uint32
	records uint64
	end     uint64 // highest offset+len written through the journal
	bytes   uint64 // data bytes journaled
	hdr     [12]byte
	err     error
	// commitEnd is Commit's end: the file's size once applied.
	commitEnd uint64
	// Sync makes Commit fsync the records before writing the trailer, and the trailer.
	Sync bool
}

const (
	journalMagic   = "TLCVMJNL"
	journalVersion = 1
	journalTrailer = 64
)

// ErrJournalOverflow is a journaled write that reaches into the journal itself.
var ErrJournalOverflow = errors.New("stream: journaled write beyond the journal's start")

// NewJournal starts a journal in f at offset start (page aligned; every journaled write must
// end at or before it). Bytes of f from start on (an earlier, uncommitted journal) are
// discarded.
func NewJournal(f *os.File, start uint64) (*Journal, error) {
	start = (start + PageSize - 1) &^ (PageSize - 1)
	if err := f.Truncate(int64(start)); err != nil {
		return nil, err
	}
	return &Journal{f: f, start: start, pos: start}, nil
}

// WriteAt journals p for offset off.
func (j *Journal) WriteAt(p []byte, off int64) (int, error) {
	if j.err != nil {
		return 0, j.err
	}
	if off < 0 || uint64(off)+uint64(len(p)) > j.start {
		j.err = fmt.Errorf("%w: %d bytes at 0x%x, journal at 0x%x", ErrJournalOverflow, len(p), off, j.start)
		return 0, j.err
	}
	binary.BigEndian.PutUint64(j.hdr[:8], uint64(off))
	binary.BigEndian.PutUint32(j.hdr[8:], uint32(len(p)))
	if len(p) > 1<<30 {
		j.err = fmt.Errorf("%w: journal record of %d bytes", ErrUsage, len(p))
		return 0, j.err
	}
	if _, err := j.f.WriteAt(j.hdr[:], int64(j.pos)); err != nil {
		j.err = err
		return 0, err
	}
	if _, err := j.f.WriteAt(p, int64(j.pos)+12); err != nil {
		j.err = err
		return 0, err
	}
	j.crc = crc32.Update(crc32.Update(j.crc, castagnoli, j.hdr[:]), castagnoli, p)
	j.pos += 12 + uint64(len(p))
	j.records++
	j.bytes += uint64(len(p))
	j.end = max(j.end, uint64(off)+uint64(len(p)))
	return len(p), nil
}

// FileBytes is what the journal wrote to the file, once applied: the records, the trailer
// and the same data again in place.
func (j *Journal) FileBytes() uint64 { return j.pos - j.start + journalTrailer + j.bytes }

// Bytes is the number of data bytes journaled so far.
func (j *Journal) Bytes() uint64 { return j.bytes }

// Commit writes the trailer: from now on the journaled writes are the file's content,
// whether or not Apply completes. end is the checkpoint's size once applied (at least the
// end of every write).
func (j *Journal) Commit(end uint64) error {
	if j.err != nil {
		return j.err
	}
	if end < j.end || end > j.start {
		return fmt.Errorf("%w: journal end 0x%x (writes reach 0x%x, journal at 0x%x)", ErrUsage, end, j.end, j.start)
	}
	if j.Sync {
		if err := j.f.Sync(); err != nil {
			return err
		}
	}
	j.commitEnd = end
	t := makeTrailer(j.start, j.pos-j.start, end, j.records, j.crc)
	at := (j.pos + journalTrailer - 1) &^ (journalTrailer - 1)
	if _, err := j.f.WriteAt(t[:], int64(at)); err != nil {
		return err
	}
	if j.Sync {
		return j.f.Sync()
	}
	return nil
}

// Apply replays the committed journal in place and cuts it off. Safe to repeat. Unlike
// RecoverJournal it reads the records once: it wrote them itself, and checks their CRC32C
// only as it goes (a mismatch, which only a damaged disk could cause, fails with
// ErrIntegrity and leaves the journal committed, for RecoverJournal to judge).
func (j *Journal) Apply() error {
	apply := func(off uint64, p []byte) error {
		_, err := j.f.WriteAt(p, int64(off))
		return err
	}
	end := j.commitEnd
	if end == 0 {
		return fmt.Errorf("%w: journal applied before its commit", ErrUsage)
	}
	if err := walkJournal(j.f, j.start, j.pos-j.start, j.records, j.crc, apply); err != nil {
		return err
	}
	return j.f.Truncate(int64(end))
}

// Abort drops an uncommitted journal: the file is the old checkpoint again.
func (j *Journal) Abort() error { return j.f.Truncate(int64(j.start)) }

func makeTrailer(start, length, end, records uint64, crc uint32) [journalTrailer]byte {
	var t [journalTrailer]byte
	copy(t[:], journalMagic)
	binary.BigEndian.PutUint32(t[8:], journalVersion)
	binary.BigEndian.PutUint64(t[16:], start)
	binary.BigEndian.PutUint64(t[24:], length)
	binary.BigEndian.PutUint64(t[32:], end)
	binary.BigEndian.PutUint64(t[40:], records)
	binary.BigEndian.PutUint32(t[48:], crc)
	binary.BigEndian.PutUint32(t[60:], crc32.Checksum(t[:60], castagnoli))
	return t
}

// RecoverJournal applies a committed journal left at the end of f (by a process killed
// while applying it, or by Journal.Apply) and truncates f to the new checkpoint's end. It
// reports whether there was one. A file without a valid trailer is left alone: what follows
// its checkpoint is an uncommitted journal, which readers ignore. A committed journal whose
// records do not match their CRC32C fails with ErrIntegrity and changes nothing.
func RecoverJournal(f *os.File) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	size := uint64(fi.Size())
	if !fi.Mode().IsRegular() || size < journalTrailer || size%journalTrailer != 0 {
		return false, nil
	}
	var t [journalTrailer]byte
	if _, err := f.ReadAt(t[:], int64(size-journalTrailer)); err != nil {
		return false, err
	}
	if string(t[:8]) != journalMagic || binary.BigEndian.Uint32(t[60:]) != crc32.Checksum(t[:60], castagnoli) {
		return false, nil
	}
	if v := binary.BigEndian.Uint32(t[8:]); v != journalVersion {
		return false, fmt.Errorf("%w: journal version %d, want %d", ErrFormat, v, journalVersion)
	}
	start := binary.BigEndian.Uint64(t[16:])
	length := binary.BigEndian.Uint64(t[24:])
	end := binary.BigEndian.Uint64(t[32:])
	records := binary.BigEndian.Uint64(t[40:])
	want := binary.BigEndian.Uint32(t[48:])
	if start%PageSize != 0 || end > start || start+length > size-journalTrailer {
		return false, fmt.Errorf("%w: journal at 0x%x of %d bytes, end 0x%x, in a file of %d bytes", ErrFormat, start, length, end, size)
	}
	// Two passes: check every record, then apply; nothing is written unless all of it is
	// intact.
	if err := walkJournal(f, start, length, records, want, nil); err != nil {
		return false, err
	}
	apply := func(off uint64, p []byte) error {
		_, err := f.WriteAt(p, int64(off))
		return err
	}
	if err := walkJournal(f, start, length, records, want, apply); err != nil {
		return false, err
	}
	if err := f.Truncate(int64(end)); err != nil {
		return false, err
	}
	return true, nil
}

// walkJournal reads the records of a journal, checks their CRC32C and, when fn is not nil,
// hands each to fn.
func walkJournal(f *os.File, start, length, records uint64, want uint32, fn func(off uint64, p []byte) error) error {
	r := io.NewSectionReader(f, int64(start), int64(length))
	var hdr [12]byte
	var buf []byte
	var crc uint32
	for range records {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("%w: journal record header: %v", ErrTruncated, err)
		}
		off := binary.BigEndian.Uint64(hdr[:8])
		n := uint64(binary.BigEndian.Uint32(hdr[8:]))
		if n > length || off+n > start {
			return fmt.Errorf("%w: journal record of %d bytes at 0x%x", ErrFormat, n, off)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		p := buf[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return fmt.Errorf("%w: journal record: %v", ErrTruncated, err)
		}
		crc = crc32.Update(crc32.Update(crc, castagnoli, hdr[:]), castagnoli, p)
		if fn != nil {
			if err := fn(off, p); err != nil {
				return err
			}
		}
	}
	if crc != want {
		return fmt.Errorf("%w: journal CRC32C 0x%08x, 0x%08x recorded", ErrIntegrity, crc, want)
	}
	return nil
}
