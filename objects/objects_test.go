package objects_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/objects"
)

func props(kv ...string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = json.RawMessage(kv[i+1])
	}
	return out
}

// encrypt is libvirt's secret encryption: AES-256-CBC, PKCS#7, base64.
func encrypt(t *testing.T, key, iv, pt []byte) string {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	pad := 16 - len(pt)%16
	for i := 0; i < pad; i++ {
		pt = append(pt, byte(pad))
	}
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(ct, pt)
	return base64.StdEncoding.EncodeToString(ct)
}

func TestSecrets(t *testing.T) {
	r := objects.New(objects.Config{})
	defer r.Close()
	key := []byte("0123456789abcdef0123456789abcdef")
	iv := []byte("fedcba9876543210")
	keyFile := filepath.Join(t.TempDir(), "master-key.aes")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	if err := r.Add("masterKey0", "secret", props("format", `"raw"`, "file", q(keyFile))); err != nil {
		t.Fatal(err)
	}
	ct := encrypt(t, key, iv, []byte("the password"))
	if err := r.Add("sec0", "secret", props("data", q(ct), "keyid", `"masterKey0"`, "iv", q(base64.StdEncoding.EncodeToString(iv)), "format", `"base64"`)); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Secret("sec0"); err != nil || string(got) != "the password" {
		t.Errorf("sec0 = %q, %v", got, err)
	}
	for _, tc := range []struct {
		p    map[string]json.RawMessage
		want string
	}{
		{props(), "Either 'file' or 'data' must be provided"},
		{props("data", `"a"`, "file", `"/x"`), "'file' and 'data' are mutually exclusive"},
		{props("data", `"%%"`, "format", `"base64"`), "Base64 data contains invalid characters"},
		{props("data", `"a"`, "keyid", `"nope"`), "No secret with id 'nope'"},
		{props("data", `"a"`, "keyid", `"sec0"`), "Key should be 32 bytes in length"},
		{props("data", `"a"`, "keyid", `"masterKey0"`), "IV is required to decrypt secret"},
		{props("data", `"abc"`, "keyid", `"masterKey0"`, "iv", q(base64.StdEncoding.EncodeToString(iv))), "Length 3 must be a multiple of block size 16"},
		{props("data", `"a"`, "keyid", `"masterKey0"`, "iv", `"AAAA"`), "IV should be 16 bytes in length not 3"},
	} {
		if err := r.Add("x", "secret", tc.p); err == nil || err.Error() != tc.want {
			t.Errorf("Add(secret %v) = %v, want %q", tc.p, err, tc.want)
		}
	}
	if err := r.Add("sec0", "secret", props("data", `"a"`)); err == nil ||
		err.Error() != "attempt to add duplicate property 'sec0' to object (type 'container')" {
		t.Errorf("duplicate: %v", err)
	}
}

func TestMemoryBackends(t *testing.T) {
	r := objects.New(objects.Config{DumpGuestCore: false})
	defer r.Close()
	if err := r.Add("m0", "memory-backend-ram", props("size", "0")); err == nil ||
		err.Error() != "property 'size' of memory-backend-ram doesn't take value '0'" {
		t.Errorf("size 0: %v", err)
	}
	if err := r.Add("m1", "memory-backend-memfd", props("size", "1048576")); err != nil {
		t.Fatal(err)
	}
	o, _ := r.Get("m1")
	m := o.Memory
	if m == nil || m.FD < 0 || !m.Share || m.Dump || m.Size != 1<<20 {
		t.Fatalf("memfd back-end: %+v", m)
	}
	var st unix.Stat_t
	if err := unix.Fstat(m.FD, &st); err != nil || st.Size != 1<<20 {
		t.Errorf("memfd size %d, %v", st.Size, err)
	}
	path := filepath.Join(t.TempDir(), "mem")
	if err := r.Add("m2", "memory-backend-file", props("size", "4096", "mem-path", `"`+path+`"`)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 4096 {
		t.Errorf("backing file: %v %v", fi, err)
	}
	r.Use(o)
	if err := r.Del("m1"); !errors.Is(err, objects.ErrInUse) || err.Error() != "object 'm1' is in use, can not be deleted" {
		t.Errorf("Del in use: %v", err)
	}
	r.Release(o)
	if err := r.Del("m1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Del("m1"); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Del twice: %v", err)
	}
}

func TestIOThread(t *testing.T) {
	r := objects.New(objects.Config{})
	defer r.Close()
	if err := r.Add("io1", "iothread", props("poll-max-ns", "100")); err != nil {
		t.Fatal(err)
	}
	o, _ := r.Get("io1")
	if o.IOThread == nil || func() bool { v, _ := o.IOThread.Param("poll-max-ns"); return v != 100 }() || o.IOThread.ThreadID <= 0 {
		t.Fatalf("iothread: %+v", o.IOThread)
	}
	if _, err := os.Stat(filepath.Join("/proc/self/task", itoa(o.IOThread.ThreadID))); err != nil {
		t.Errorf("the iothread's thread is not in /proc/self/task: %v", err)
	}
	if err := r.Add("io2", "iothread", props("poll-grow", "-1")); err == nil ||
		err.Error() != "poll-grow value must be in range [0, 9223372036854775807]" {
		t.Errorf("poll-grow -1: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
