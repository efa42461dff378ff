package compat

import (
	"fmt"
)

// resolveSMP is hw/core/machine-smp.c machine_parse_smp_config of QEMU
// 7.2: defaulting of omitted topology members (cores preferred over
// sockets since 6.2), then its sanity checks and their texts.
func (s *parseState) resolveSMP(m MachineLimits) error {
	c := s.cfg
	in := c.SMP
	has := map[string]bool{}
	if in.Opts != nil {
		for _, kv := range in.Opts.List {
			has[kv.Name] = true
		}
	}
	if (has["cpus"] && in.CPUs == 0) || (has["sockets"] && in.Sockets == 0) ||
		(has["dies"] && in.Dies == 0) || (has["clusters"] && in.Clusters == 0) ||
		(has["cores"] && in.Cores == 0) || (has["threads"] && in.Threads == 0) ||
		(has["maxcpus"] && in.MaxCPUs == 0) {
		s.warn("", "warning: Deprecated CPU topology (considered invalid): CPU topology parameters must be greater than zero\n")
	}
	// QEMU keeps the int64 values in unsigned ints.
	cpus, sockets, dies := uint32(in.CPUs), uint32(in.Sockets), uint32(in.Dies)
	clusters, cores, threads, maxcpus := uint32(in.Clusters), uint32(in.Cores), uint32(in.Threads), uint32(in.MaxCPUs)

	if !m.DiesSupported && dies > 1 {
		return s.fail("", newErr(ErrInvalid, "dies not supported by this machine's CPU topology"))
	}
	if !m.ClustersSupported && clusters > 1 {
		return s.fail("", newErr(ErrInvalid, "clusters not supported by this machine's CPU topology"))
	}
	dies = or1(dies)
	clusters = or1(clusters)
	if cpus == 0 && maxcpus == 0 {
		sockets, cores, threads = or1(sockets), or1(cores), or1(threads)
	} else {
		if maxcpus == 0 {
			maxcpus = cpus
		}
		if m.PreferSockets {
			if sockets == 0 {
				cores, threads = or1(cores), or1(threads)
				sockets = maxcpus / (dies * clusters * cores * threads)
			} else if cores == 0 {
				threads = or1(threads)
				cores = maxcpus / (sockets * dies * clusters * threads)
			}
		} else {
			if cores == 0 {
				sockets, threads = or1(sockets), or1(threads)
				cores = maxcpus / (sockets * dies * clusters * threads)
			} else if sockets == 0 {
				threads = or1(threads)
				sockets = maxcpus / (dies * clusters * cores * threads)
			}
		}
		if threads == 0 {
			threads = maxcpus / (sockets * dies * clusters * cores)
		}
	}
	if maxcpus == 0 {
		maxcpus = sockets * dies * clusters * cores * threads
	}
	if cpus == 0 {
		cpus = maxcpus
	}
	c.Topology = Topology{CPUs: cpus, Sockets: sockets, Dies: dies, Clusters: clusters, Cores: cores, Threads: threads, MaxCPUs: maxcpus}
	hier := fmt.Sprintf("sockets (%d)", sockets)
	if m.DiesSupported {
		hier += fmt.Sprintf(" * dies (%d)", dies)
	}
	if m.ClustersSupported {
		hier += fmt.Sprintf(" * clusters (%d)", clusters)
	}
	hier += fmt.Sprintf(" * cores (%d) * threads (%d)", cores, threads)
	if sockets*dies*clusters*cores*threads != maxcpus {
		return s.fail("", newErr(ErrInvalid, fmt.Sprintf("Invalid CPU topology: product of the hierarchy must match maxcpus: %s != maxcpus (%d)", hier, maxcpus)))
	}
	if maxcpus < cpus {
		return s.fail("", newErr(ErrInvalid, fmt.Sprintf("Invalid CPU topology: maxcpus must be equal to or greater than smp: %s == maxcpus (%d) < smp_cpus (%d)", hier, maxcpus, cpus)))
	}
	if int64(cpus) < int64(m.MinCPUs) {
		return s.fail("", newErr(ErrInvalid, fmt.Sprintf("Invalid SMP CPUs %d. The min CPUs supported by machine '%s' is %d", int32(cpus), m.Name, m.MinCPUs)))
	}
	if m.MaxCPUs > 0 && int64(maxcpus) > int64(m.MaxCPUs) {
		return s.fail("", newErr(ErrInvalid, fmt.Sprintf("Invalid SMP CPUs %d. The max CPUs supported by machine '%s' is %d", int32(maxcpus), m.Name, m.MaxCPUs)))
	}
	return nil
}

func or1(v uint32) uint32 {
	if v == 0 {
		return 1
	}
	return v
}
