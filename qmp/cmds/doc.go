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
// never through the concrete types, so that tests drive them with fakes. The block,
// migration and NBD handlers do the same: each group declares, beside itself, the few
// methods it calls, named after what it needs, and registers on that interface alone:
//
//	interface           file            methods                                   real type
//	blockLister         block.go        Lock Unlock BackendsLocked NodesLocked    *blockdev.Graph
//	nodeGraph           block.go        blockLister + Add Del Resize Snapshot     *blockdev.Graph
//	                                    Transaction Create
//	backingFileChanger  backingfile.go  ChangeBackingFile                         *blockdev.Graph
//	reopener            reopen.go       Reopen                                    *blockdev.Graph
//	snapshotReporter    snapshots.go    SnapshotReport                            *blockdev.Graph
//	mediaDrives         media.go        OpenTray CloseTray RemoveMedium           *blockdev.Graph
//	                                    InsertMedium ChangeMedium Eject
//	ioControls          blockio.go      SetIOThrottle SetWriteThreshold QemuIO    *blockdev.Graph
//	bitmapStore         bitmap.go       RunStep LookupBitmap                      *blockdev.Graph
//	jobControl          jobs.go         Jobs BlockJobs CancelJob SetJobSpeed      *blockdev.Graph
//	                                    Pause/Resume/Complete/Dismiss/FinalizeJob
//	jobStarter          blockjobs.go    Stream Commit BlockdevMirror DriveMirror  *blockdev.Graph
//	                                    CommitImage Transaction
//	exportNodes         nbd.go          LookupNode UseForExport LookupBitmap      *blockdev.Graph
//	ioStatusResetter    run.go          ResetIOStatus (cont)                      *blockdev.Graph
//	nbdExports          nbd.go          CheckStart Start Stop HasID CheckAdd Add  *nbd.Server
//	                                    Remove Exports
//	migrator            migration.go    Migrate Cancel Info SetCapabilities       *migration.Engine
//	                                    Capabilities SetParams Params Incoming
//	switchover          migration_      Continue StartPostcopy Pause Recover      *migration.Engine
//	                    switchover.go
//	vmSnapshotter       snapshot_       Check/Has/Create/Goto/DeleteSnapshot      *blockdev.Graph
//	                    internal.go     VMStateNode SnapshotDevice StartJob
//	                                    DeleteDeviceSnapshot
//	vmStateStore        snapshot_       SaveVM LoadVM                             *migration.Engine
//	                    internal.go
//
// Deps holds their unions (BlockLayer, MigrationEngine, NBDServer: layers.go), which the
// composition root fills with the real types; each registerX takes its group's interface
// out of Deps (xCommands(r, d.Block, ...)), and the tests call xCommands with a fake that
// records the calls and returns the layer's named sentinel errors (wrapped as the layer
// wraps them), then read the replies off a QMP connection (wire_test.go). Every reply type is
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
