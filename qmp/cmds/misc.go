package cmds

import (
	"tlcvm/chardev"
	"tlcvm/qmp"
)

// ChardevBackendInfo is one element of query-chardev-backends.
type ChardevBackendInfo struct {
	qmp.QAPIOrder
	Name string `json:"name"`
}

// BalloonInfo is query-balloon's reply (never returned: tlcvm has no balloon device).
type BalloonInfo struct {
	qmp.QAPIOrder
	Actual int64 `json:"actual"`
}

// BalloonArgs are balloon's arguments: the target guest memory size in bytes.
type BalloonArgs struct {
	Value int64 `json:"value"`
}

// SevCapability is query-sev-capabilities's reply (never returned: no KVM, no SEV).
type SevCapability struct {
	qmp.QAPIOrder
	PDH             string `json:"pdh"`
	CertChain       string `json:"cert-chain"`
	CPU0ID          string `json:"cpu0-id"`
	CBitPos         int64  `json:"cbitpos"`
	ReducedPhysBits int64  `json:"reduced-phys-bits"`
}

// SGXInfo is query-sgx-capabilities's reply (never returned: no KVM, no SGX).
type SGXInfo struct {
	qmp.QAPIOrder
	SGX     bool  `json:"sgx"`
	SGX1    bool  `json:"sgx1"`
	SGX2    bool  `json:"sgx2"`
	FLC     bool  `json:"flc"`
	Section []any `json:"section"`
}

// registerMisc adds the queries whose answer follows from what tlcvm is: a balloon device
// only when -device asked for one (with a guest that has no balloon driver), no KVM (so no SEV or SGX), and the TPM and chardev back-ends of its
// catalogue.
func registerMisc(r *qmp.Registry, d *Deps) {
	r.Register(
		qmp.Command{Name: "query-balloon", Returns: BalloonInfo{},
			Run: func(*qmp.Call) (any, error) {
				if !d.Balloon {
					return nil, qmp.DeviceNotActive("No balloon device has been activated")
				}
				// The guest has no balloon driver: it never gives memory back, so the
				// balloon's actual size is all of RAM, as QEMU reports for such a guest.
				return BalloonInfo{Actual: int64(d.Machine.RAMSize())}, nil
			}},
		qmp.Command{Name: "balloon", Args: &BalloonArgs{},
			Run: func(c *qmp.Call) (any, error) {
				if !d.Balloon {
					return nil, qmp.DeviceNotActive("No balloon device has been activated")
				}
				if c.Args.(*BalloonArgs).Value <= 0 {
					return nil, qmp.GenericError("Parameter 'target' expects a size")
				}
				return nil, nil
			}},
		qmp.Command{Name: "query-sev-capabilities", Returns: SevCapability{},
			Run: func(*qmp.Call) (any, error) { return nil, qmp.GenericError("KVM not enabled") }},
		qmp.Command{Name: "query-sgx-capabilities", Returns: SGXInfo{},
			Run: func(*qmp.Call) (any, error) { return nil, qmp.GenericError("SGX is not enabled in KVM") }},
		qmp.Command{Name: "query-chardev-backends", Returns: []ChardevBackendInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) {
				// QEMU lists the back-end classes newest registration first.
				out := []ChardevBackendInfo{}
				for i := len(chardev.Drivers) - 1; i >= 0; i-- {
					out = append(out, ChardevBackendInfo{Name: chardev.Drivers[i]})
				}
				return out, nil
			}},
	)
}
