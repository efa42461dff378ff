package stream_test

import (
	"bytes"
	"errors"
	"testing"

	"tlcvm/migration/stream"
)

// smallStream is a complete stream of ~14 KiB: two blocks (data, zero and CONTINUE
// records), several sections and four devices.
func smallStream(t testing.TB) []byte {
	return newMachine(7, 8<<10, 4<<10).stream(t)
}

// TestEveryFlippedByteDetected flips each byte in turn (one bit, then all bits) and
// requires an error wrapping ErrFormat, ErrIntegrity or ErrTruncated before End.
func TestEveryFlippedByteDetected(t *testing.T) {
	data := smallStream(t)
	if _, err := load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	bad := make([]byte, len(data))
	for _, mask := range []byte{0x01, 0xff} {
		for i := range data {
			copy(bad, data)
			bad[i] ^= mask
			l, err := load(bytes.NewReader(bad))
			if err == nil || !isStreamErr(err) {
				t.Fatalf("byte %d ^ 0x%02x: got %v (end=%v), want a stream error", i, mask, err, l.end)
			}
		}
	}
}

// TestEveryTruncationDetected cuts the stream at every length.
func TestEveryTruncationDetected(t *testing.T) {
	data := smallStream(t)
	for n := 0; n < len(data); n++ {
		_, err := load(bytes.NewReader(data[:n]))
		if !errors.Is(err, stream.ErrTruncated) {
			t.Fatalf("cut at %d of %d: got %v, want ErrTruncated", n, len(data), err)
		}
	}
}

// TestTrailingBytesIgnored: the Reader stops after the vmdesc (a file or fd may hold more).
func TestTrailingBytesIgnored(t *testing.T) {
	data := append(smallStream(t), "trailing garbage"...)
	if _, err := load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// TestErrorsAreSticky: after an error, Next keeps returning it.
func TestErrorsAreSticky(t *testing.T) {
	data := smallStream(t)
	r := stream.NewReader(bytes.NewReader(data[:100]))
	var first error
	for i := 0; i < 10; i++ {
		_, err := r.Next()
		if err != nil && first == nil {
			first = err
		} else if first != nil && err != first {
			t.Fatalf("call %d: %v, want the first error %v", i, err, first)
		}
	}
	if !errors.Is(first, stream.ErrTruncated) {
		t.Fatalf("got %v", first)
	}
}
