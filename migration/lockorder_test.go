package migration_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"tlcvm/migration"
)

// TestConcurrentMonitorCalls: query-migrate, migrate, migrate-set-capabilities and
// migrate-set-parameters from several goroutines at once while a checkpoint is active, as
// they would arrive without the QMP big lock to serialise them. The engine's lock order is
// Engine.mu before job.mu; query-migrate used to take them the other way round (job.info
// holding job.mu read the limits under Engine.mu) while migrate and set-capabilities, under
// Engine.mu, ask the job its status: the calls below deadlocked within a few hundred rounds.
func TestConcurrentMonitorCalls(t *testing.T) {
	const size = 16 << 20
	m := newFakeMachine(size, "running")
	for p := uint64(0); p < size/pageSize; p++ {
		m.ram.store(p, p+1)
	}
	// Not newEngine: its Close at cleanup would hang too if the engine deadlocked.
	e := migration.New(migration.Options{Machine: m})
	// 1 MiB/s: the 16 MiB stream keeps the checkpoint active far longer than the test.
	if err := e.SetParams(migration.Params{MaxBandwidth: ptr[uint64](1 << 20)}); err != nil {
		t.Fatal(err)
	}
	if err := e.Migrate("exec:cat >/dev/null", migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(e, migration.StatusActive)

	const rounds = 2000
	callers := map[string]func(){
		"query-migrate": func() {
			if st := e.Info().Status; st != migration.StatusActive {
				t.Errorf("query-migrate: %s during the test", st)
			}
		},
		"migrate": func() {
			if err := e.Migrate("exec:cat >/dev/null", migration.MigrateOptions{}); err == nil {
				t.Error("a second migrate started")
			}
		},
		"migrate-set-capabilities": func() {
			_ = e.SetCapabilities([]migration.CapabilityStatus{{Capability: migration.CapEvents, State: true}})
		},
		"migrate-set-parameters": func() {
			if err := e.SetParams(migration.Params{DowntimeLimit: ptr[uint64](300)}); err != nil {
				t.Error(err)
			}
		},
	}
	var wg sync.WaitGroup
	for _, call := range callers {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					call()
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("monitor calls still blocked after 30 s (lock-order deadlock):\n%s", buf)
	}
	e.Cancel()
	if st := e.Wait().Status; st != migration.StatusCancelled {
		t.Errorf("after cancel: %s", st)
	}
	e.Close()
}
