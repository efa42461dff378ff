package catalog_test

import (
	"encoding/json"
	"errors"
	"testing"

	"tlcvm/compat/qerror"
	"tlcvm/machine/catalog"
)

// FuzzExpandCPU feeds arbitrary props to the expansion: it must either
// fail with one of the package's errors or return a well-formed dictionary.
func FuzzExpandCPU(f *testing.F) {
	f.Add("qemu64", `{"sse4.2":true}`)
	f.Add("max", `{"migratable":false,"hv-passthrough":true}`)
	f.Add("base", `{"family":6,"model-id":"x"}`)
	f.Add("host", `[1]`)
	f.Add("Skylake-Client-v4", `{"vmx":true,"level":99,"min-xlevel":3}`)
	f.Fuzz(func(t *testing.T, model, props string) {
		for _, typ := range []catalog.ExpansionType{catalog.ExpansionStatic, catalog.ExpansionFull} {
			exp, err := catalog.ExpandCPU(typ, model, json.RawMessage(props))
			if err != nil {
				var ce *qerror.Error
				if !errors.As(err, &ce) || ce.Msg == "" {
					t.Fatalf("error %v is not a *qerror.Error", err)
				}
				continue
			}
			b, err := json.Marshal(exp)
			if err != nil || !json.Valid(b) {
				t.Fatalf("expansion does not marshal: %v", err)
			}
		}
	})
}
