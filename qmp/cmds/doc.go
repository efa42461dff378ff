// Package cmds holds tlcvm's QMP command handlers: the run-state commands (stop, cont,
// system_reset, system_powerdown, quit), the queries about the machine (query-status,
// query-name, query-uuid, query-version, query-kvm, query-target, query-cpus-fast,
// query-hotpluggable-cpus, query-memory-size-summary, query-iothreads, query-pci,
// query-chardev), the catalogue queries (query-machines, query-cpu-definitions,
// query-cpu-model-expansion, qom-list-types, qom-list-properties, device-list-properties),
// the QOM tree (qom-list, qom-get, qom-set), guest memory (pmemsave, memsave), the dirty
// rate and dirty limits (calc-dirty-rate, query-dirty-rate, *-vcpu-dirty-limit, through
// dirtyrate), statistics (query-stats, query-stats-schemas), memory dumps
// (dump-guest-memory, query-dump, query-dump-guest-memory-capability), the display and
// input (screendump, send-key, input-send-event) and human-monitor-command.
//
// Handlers reach the VM through small interfaces declared here (Machine, Chardevs, Human),
// never through the concrete types, so that tests drive them with fakes. Every reply type is
// a struct whose field order is the key order QEMU 7.2 emits (QEMU prints its QDicts in hash
// order, so the order is copied from the real binary, not derived from the QAPI schema).
//
// Internal commands (names starting "x-tlcvm-") serve HMP commands that have no QMP twin in
// QEMU 7.2 (info registers, x, xp). They are registered Internal: reachable from HMP only,
// never over the wire, so query-commands and query-qmp-schema list exactly QEMU's commands.
//
// Handlers return the errors of the packages they call unchanged (their texts are QEMU's);
// ErrorClasses is the table of those packages' sentinels that QMP reports with a class other
// than GenericError, handed to the registry by whoever builds the server.
package cmds
