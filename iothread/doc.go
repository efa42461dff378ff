// Package iothread is QEMU 7.2's iothread object (-object iothread, object-add): an event
// loop on an OS thread of its own, with the parameters of QEMU's event-loop-base. It is a
// leaf: it imports nothing of tlcvm's but compat/qerror, and never qmp or hmp.
//
// A Thread exists from Add until Del or Close, which join it, as QEMU's iothread_stop
// joins its thread; its thread id (gettid) is what query-iothreads reports and what
// libvirt pins (virsh iothreadpin). With -name debug-threads=on the thread is named
// "IO <id>", as QEMU names it. Its loop runs the functions handed to Do, one at a time, in
// order (QEMU's AioContext bottom halves); tlcvm's devices do their I/O on the vCPU
// threads, so nothing hands it work yet but tests.
//
// Parameters, by QOM property name (all int, qom-get/qom-set, query-iothreads, HMP info
// iothreads):
//
//	poll-max-ns      32768   the adaptive polling window's limit
//	poll-grow        0       its growth factor (0: QEMU's default of 2)
//	poll-shrink      0       its shrink divisor (0: the window resets)
//	aio-max-batch    0       the Linux AIO batch limit (0: the engine's default)
//	thread-pool-min  0       the worker pool's bounds (min ≤ max, 0 < max ≤ INT_MAX)
//	thread-pool-max  64
//
// A negative value is refused ("poll-grow value must be in range [0,
// 9223372036854775807]"). As in QEMU, a pool bound is stored before the pair is checked,
// so "bad thread-pool-min/thread-pool-max values" leaves the new value in place; at
// creation the same check fails the object.
package iothread
