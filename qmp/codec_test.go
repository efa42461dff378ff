package qmp_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"tlcvm/qmp"
)

type Inner struct {
	N8  int8    `json:"n8"`
	U16 *uint16 `json:"u16,omitempty"`
	F   float64 `json:"f,omitempty"`
}

type DecodeArgs struct {
	S     string          `json:"s"`
	I     *int64          `json:"i,omitempty"`
	I32   *int32          `json:"i32,omitempty"`
	U     *uint64         `json:"u,omitempty"`
	C     *Color          `json:"c,omitempty"`
	L     []Inner         `json:"l,omitempty"`
	In    *Inner          `json:"in,omitempty"`
	Any   *qmp.Value      `json:"any,omitempty"`
	Raw   json.RawMessage `json:"raw,omitempty"`
	Sh    *Shape          `json:"sh,omitempty"`
	Colrs []Color         `json:"colors,omitempty"`
}

func TestDecodeArgs(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{`{"s":"x"}`, ""},
		{`{}`, "Parameter 's' is missing"},
		{`{"s":null}`, "Invalid parameter type for 's', expected: string"},
		{`{"s":"x","i":null}`, "Invalid parameter type for 'i', expected: integer"},
		{`{"s":"x","i":9223372036854775808}`, "Invalid parameter type for 'i', expected: integer"},
		{`{"s":"x","i":-9223372036854775808}`, ""},
		{`{"s":"x","i32":2147483648}`, "Parameter 'i32' expects int32_t"},
		{`{"s":"x","i32":-2147483648}`, ""},
		{`{"s":"x","u":-1}`, ""},
		{`{"s":"x","u":18446744073709551615}`, ""},
		{`{"s":"x","u":1e3}`, "Parameter 'u' expects uint64"},
		{`{"s":"x","u":"1"}`, "Parameter 'u' expects uint64"},
		{`{"s":"x","c":"red"}`, ""},
		{`{"s":"x","c":"pink"}`, "Parameter 'c' does not accept value 'pink'"},
		{`{"s":"x","c":1}`, "Invalid parameter type for 'c', expected: string"},
		{`{"s":"x","colors":["red","pink"]}`, "Parameter 'null' does not accept value 'pink'"},
		{`{"s":"x","l":[{"n8":1},{"n8":128}]}`, "Parameter 'n8' expects int8_t"},
		{`{"s":"x","l":[{"n8":1},{"n8":1,"u16":65536}]}`, "Parameter 'u16' expects uint16_t"},
		{`{"s":"x","l":[{"n8":1},{}]}`, "Parameter 'l[1].n8' is missing"},
		{`{"s":"x","l":[{"n8":1,"f":"x"}]}`, "Invalid parameter type for 'l[0].f', expected: number"},
		{`{"s":"x","l":[{"n8":1,"zz":1}]}`, "Parameter 'l[0].zz' is unexpected"},
		{`{"s":"x","l":[1]}`, "Invalid parameter type for 'l[0]', expected: object"},
		{`{"s":"x","l":{}}`, "Invalid parameter type for 'l', expected: array"},
		{`{"s":"x","in":{"n8":"a"}}`, "Invalid parameter type for 'in.n8', expected: integer"},
		{`{"s":"x","in":{"n8":1,"f":2}}`, ""},
		{`{"s":"x","in":[]}`, "Invalid parameter type for 'in', expected: object"},
		{`{"s":"x","any":{"k":[1,null]},"raw":[true]}`, ""},
		{`{"s":"x","sh":{"kind":"circle","radius":1.5}}`, ""},
		{`{"s":"x","sh":{"kind":"circle"}}`, "Parameter 'sh.radius' is missing"},
		{`{"s":"x","sh":{"kind":"square","radius":1}}`, "Parameter 'sh.side' is missing"},
		{`{"s":"x","sh":{"kind":"point","radius":1}}`, "Parameter 'sh.radius' is unexpected"},
		{`{"s":"x","sh":{"kind":"hexagon"}}`, "Parameter 'kind' does not accept value 'hexagon'"},
		{`{"s":"x","sh":{"color":"red"}}`, "Parameter 'sh.kind' is missing"},
		{`{"s":"x","zz":1}`, "Parameter 'zz' is unexpected"},
	} {
		v, err := qmp.ParseValue([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		_, err = qmp.DecodeArgs(v, &DecodeArgs{})
		got := ""
		if err != nil {
			qe := qmp.ToError(err)
			if qe.Class != qmp.ClassGenericError {
				t.Errorf("%s: class %s", tc.in, qe.Class)
			}
			got = qe.Desc
		}
		if got != tc.err {
			t.Errorf("%s:\n got %q\nwant %q", tc.in, got, tc.err)
		}
	}
}

func TestDecodeValues(t *testing.T) {
	v, _ := qmp.ParseValue([]byte(`{"s":"é","u":-1,"i32":-5,"in":{"n8":-128,"u16":7,"f":2},"any":{"b":1,"a":2},"raw":{'x':"y"},"sh":{"kind":"square","side":3,"color":"blue"},"colors":["green"]}`))
	out, err := qmp.DecodeArgs(v, &DecodeArgs{})
	if err != nil {
		t.Fatal(err)
	}
	a := out.(*DecodeArgs)
	blue := Color("blue")
	u16 := uint16(7)
	want := &DecodeArgs{S: "é", U: new(uint64(math.MaxUint64)), I32: new(int32(-5)),
		In: &Inner{N8: -128, U16: &u16, F: 2}, Any: a.Any, Raw: json.RawMessage(`{"x": "y"}`),
		Sh: &Shape{Kind: "square", Color: &blue, Variant: &Square{Side: 3}}, Colrs: []Color{"green"}}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("got  %+v\nwant %+v", a, want)
	}
	if got := string(qmp.AppendJSON(nil, a.Any, false)); got != `{"a": 2, "b": 1}` {
		t.Errorf("any: %s", got)
	}
	// A decoded union encodes back with its variant members, in QDict order.
	b, _ := qmp.Marshal(a.Sh)
	if string(b) != `{"color": "blue", "side": 3, "kind": "square"}` {
		t.Errorf("union: %s", b)
	}
}

func TestMarshal(t *testing.T) {
	type ordered struct {
		qmp.QAPIOrder
		Running    bool   `json:"running"`
		Singlestep bool   `json:"singlestep"`
		Status     string `json:"status"`
	}
	type plain struct {
		Z     string            `json:"z"`
		A     int               `json:"a"`
		Opt   *int              `json:"opt,omitempty"`
		Empty []string          `json:"empty"`
		Skip  string            `json:"-"`
		M     map[string]uint64 `json:"m,omitempty"`
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{ordered{Status: "running", Running: true}, `{"status": "running", "singlestep": false, "running": true}`},
		{plain{Z: "z", A: 1, M: map[string]uint64{"b": math.MaxUint64, "a": 1}}, `{"z": "z", "a": 1, "empty": [], "m": {"a": 1, "b": 18446744073709551615}}`},
		{[]float64{0.1, 1, 1e100, math.Copysign(0, -1), math.Inf(1), 5e-324}, `[0.10000000000000001, 1, 1e+100, -0, inf, 4.9406564584124654e-324]`},
		{"a\x00\x7f\u2028\U0001F600\xff\"\\/", `"a\u0000\u007F\u2028\uD83D\uDE00\uFFFD\"\\/"`},
		{qmp.StrOrNull{Null: true}, `null`},
		{qmp.StrOrNull{S: "x"}, `"x"`},
		{json.RawMessage(`{"b":1,"a":[]}`), `{"a": [], "b": 1}`},
		{nil, `null`},
		{&qmp.Error{Class: "GenericError", Desc: "x"}, `{"class": "GenericError", "desc": "x"}`},
	} {
		b, err := qmp.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("%#v:\n got %s %v\nwant %s", tc.v, b, err, tc.want)
		}
		sameAsValue(t, tc.v)
	}
	if got := fmt.Sprint(qmp.QDictOrder("running", "singlestep", "status")); got != "[status singlestep running]" {
		t.Errorf("QDictOrder: %s", got)
	}
	if got := fmt.Sprint(qmp.QDictOrder("major", "minor", "micro")); got != "[micro minor major]" {
		t.Errorf("QDictOrder: %s", got)
	}
}

var errSentinel = errors.New("machine: not running")

func TestToError(t *testing.T) {
	classes := qmp.NewErrorClasses(qmp.ErrorClass{Sentinel: errSentinel, Class: qmp.ClassDeviceNotActive})
	for _, tc := range []struct {
		err         error
		class, desc string
	}{
		{qmp.DeviceNotFound("d0"), "DeviceNotFound", "Device 'd0' not found"},
		{fmt.Errorf("wrapped: %w", qmp.CommandNotFound("x")), "CommandNotFound", "The command x has not been found"},
		{fmt.Errorf("stop: %w", errSentinel), "DeviceNotActive", "stop: machine: not running"},
		{errors.New("plain"), "GenericError", "plain"},
		{&qmp.SyntaxError{Msg: "JSON parse error, x"}, "GenericError", "JSON parse error, x"},
	} {
		if e := classes.ToError(tc.err); e.Class != tc.class || e.Desc != tc.desc {
			t.Errorf("%v: got %s/%s", tc.err, e.Class, e.Desc)
		}
	}
	if e := qmp.ToError(fmt.Errorf("stop: %w", errSentinel)); e.Class != qmp.ClassGenericError {
		t.Errorf("ToError without the table gave %s", e.Class)
	}
	if qmp.ToError(nil) != nil || classes.ToError(nil) != nil {
		t.Error("ToError(nil) != nil")
	}
	if !errors.Is(&qmp.SyntaxError{}, qmp.ErrSyntax) {
		t.Error("SyntaxError is not ErrSyntax")
	}
}

// FuzzDecodeArgs: any JSON object decodes or fails with a QEMU-style GenericError, never a
// panic; what decodes re-encodes.
func FuzzDecodeArgs(f *testing.F) {
	f.Add(`{"s":"x","l":[{"n8":1}],"sh":{"kind":"circle","radius":1}}`)
	f.Add(`{"s":"x","any":{"a":[1,2,{"b":null}]},"u":-3,"colors":["red"]}`)
	f.Add(`{"s":1,"i32":99999999999}`)
	f.Fuzz(func(t *testing.T, in string) {
		v, err := qmp.ParseValue([]byte(in))
		if err != nil || v.Kind() != qmp.KindObject {
			return
		}
		out, err := qmp.DecodeArgs(v, &DecodeArgs{})
		if err != nil {
			if qe := qmp.ToError(err); qe.Class != qmp.ClassGenericError {
				t.Fatalf("%s: class %s", in, qe.Class)
			}
			return
		}
		if _, err := qmp.Marshal(out); err != nil {
			t.Fatalf("%s: decoded value does not encode: %v", in, err)
		}
	})
}

// TestErrorClassesPanics: a mistake in the table shows when it is built, at start-up.
func TestErrorClassesPanics(t *testing.T) {
	other := errors.New("other")
	for _, tc := range []struct {
		name string
		m    []qmp.ErrorClass
	}{
		{"nil sentinel", []qmp.ErrorClass{{Sentinel: nil, Class: qmp.ClassDeviceNotFound}}},
		{"empty class", []qmp.ErrorClass{{Sentinel: other, Class: ""}}},
		{"unknown class", []qmp.ErrorClass{{Sentinel: other, Class: "NotAClass"}}},
		{"duplicate", []qmp.ErrorClass{{Sentinel: other, Class: qmp.ClassDeviceNotFound}, {Sentinel: other, Class: qmp.ClassGenericError}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewErrorClasses did not panic", tc.name)
				}
			}()
			qmp.NewErrorClasses(tc.m...)
		}()
	}
}

// TestRegistryErrorClasses: a handler's error gets the class of the registry's table.
func TestRegistryErrorClasses(t *testing.T) {
	r := qmp.NewRegistry()
	r.Register(qmp.Command{Name: "fail", Run: func(*qmp.Call) (any, error) {
		return nil, fmt.Errorf("Device 'x' not found: %w", errSentinel)
	}})
	s := qmp.NewServer(r, qmp.Options{Version: testVersion})
	defer s.Close()
	sess := s.NewSession()
	defer sess.Close()
	if _, err := s.Execute(sess, "fail", nil); qmp.ToError(err).Class != qmp.ClassGenericError {
		t.Errorf("without a table: %v", qmp.ToError(err))
	}
	r.SetErrorClasses(qmp.NewErrorClasses(qmp.ErrorClass{Sentinel: errSentinel, Class: qmp.ClassDeviceNotFound}))
	_, err := s.Execute(sess, "fail", nil)
	if qe := qmp.ToError(err); qe.Class != qmp.ClassDeviceNotFound || qe.Desc != "Device 'x' not found: machine: not running" {
		t.Errorf("with the table: %s: %s", qe.Class, qe.Desc)
	}
}

// sameAsValue checks that encoding v directly gives what encoding its Value gives, compact and
// pretty: Marshal and the server's replies build no Value for most types.
func sameAsValue(t *testing.T, v any) {
	t.Helper()
	val, err := qmp.ToValue(v)
	if err != nil {
		t.Errorf("ToValue(%#v): %v", v, err)
		return
	}
	for _, pretty := range []bool{false, true} {
		var direct []byte
		if pretty {
			direct, err = qmp.MarshalPretty(v)
		} else {
			direct, err = qmp.Marshal(v)
		}
		if want := qmp.AppendJSON(nil, val, pretty); err != nil || string(direct) != string(want) {
			t.Errorf("%#v (pretty %v): direct %s (%v), via Value %s", v, pretty, direct, err, want)
		}
	}
}

func TestMarshalDirect(t *testing.T) {
	type inner struct {
		N  int8       `json:"n"`
		F  float32    `json:"f,omitempty"`
		P  *uint16    `json:"p,omitempty"`
		L  []inner    `json:"l,omitempty"`
		Ar [2]bool    `json:"ar"`
		I  any        `json:"i"`
		V  *qmp.Value `json:"v,omitempty"`
	}
	type embedded struct {
		inner
		Extra string `json:"extra"`
	}
	type dup struct {
		inner
		N string `json:"n"`
	}
	u := uint16(7)
	v, _ := qmp.ParseValue([]byte(`{"b": [1, {}], "a": null}`))
	for _, x := range []any{
		inner{}, &inner{N: -1, F: 1.5, P: &u, L: []inner{{N: 2}}, I: map[string]int{"y": 1, "x": 2}, V: v},
		embedded{Extra: "e"}, dup{N: "s"}, []any{nil, 1, "x", []int{}, struct{}{}},
		(*inner)(nil), []*inner{nil, {}}, Color("red"), []Color{"blue"},
		qmp.VersionInfo{Qemu: qmp.VersionTriple{Major: 7, Minor: 2}, Package: "p"},
		Shape{Kind: "square", Variant: Square{Side: 3}}, Node{Name: "a", Backing: &Node{Name: "b"}}, json.RawMessage(`[1, {"a": "b"}]`), v,
	} {
		sameAsValue(t, x)
	}
}
