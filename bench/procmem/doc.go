// Package procmem reads a process's memory figures from Linux procfs.
//
// Two files, both "Key:   value kB" lines (proc(5)):
//
//	/proc/PID/status          /proc/PID/smaps_rollup
//	Name:   qemu-system-x86   55d0…-7ffd… ---p 00000000 00:00 0   [rollup]   <- header, skipped
//	VmHWM:      1816 kB       Rss:                1816 kB
//	VmRSS:      1816 kB       Pss:                 202 kB
//	RssAnon:     112 kB       Pss_Anon:            112 kB
//	RssFile:    1704 kB       Pss_File:             90 kB
//	RssShmem:      0 kB       Pss_Shmem:             0 kB
//	Threads:       1          Private_Dirty:       112 kB
//
// Values with a "kB" unit are returned in bytes; unit-less values (Threads)
// as they are. RSS counts every resident page mapped by the process, shared
// ones included; PSS divides each shared page by the number of processes
// mapping it, so it is the fairer "cost of one more VM" figure.
//
// ReadCPU reads the process's CPU time (utime + stime of /proc/PID/stat, in clock ticks of
// 10 ms), for figures of CPU used over a window.
package procmem
