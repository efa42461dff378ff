package pack_test

import (
	"errors"
	"slices"
	"testing"

	"tlcvm/machine/catalog/internal/pack"
)

func TestRoundTrip(t *testing.T) {
	for _, vs := range [][]int{nil, {0}, {pack.Max}, {1234, 0, 63, 64, 4095}} {
		s := pack.Encode(vs)
		if len(s) != 2*len(vs) {
			t.Fatalf("Encode(%v) = %q: length %d", vs, s, len(s))
		}
		got, err := pack.Decode(s)
		if err != nil || !slices.Equal(got, append([]int{}, vs...)) {
			t.Fatalf("Decode(Encode(%v)) = %v, %v", vs, got, err)
		}
	}
	if s := pack.Encode([]int{1234}); s != "JI" {
		t.Fatalf("Encode(1234) = %q, want %q", s, "JI")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, s := range []string{"0", "0-", "\x00\x00", "abc"} {
		if _, err := pack.Decode(s); !errors.Is(err, pack.ErrCorrupt) {
			t.Errorf("Decode(%q) error = %v, want ErrCorrupt", s, err)
		}
	}
}

func TestEncodePanicsOutOfRange(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Encode(4096) did not panic")
		}
	}()
	pack.Encode([]int{pack.Max + 1})
}

func FuzzDecode(f *testing.F) {
	f.Add("JI00")
	f.Add("0")
	f.Fuzz(func(t *testing.T, s string) {
		vs, err := pack.Decode(s)
		if err != nil {
			return
		}
		if again := pack.Encode(vs); again != s {
			t.Fatalf("Encode(Decode(%q)) = %q", s, again)
		}
	})
}
