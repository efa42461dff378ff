package blockdev

// CancelAllJobs is job_cancel_sync_all (at quit, before the images close): every job is
// cancelled (forced) and waited for until it is gone; a concluded job is dismissed.
func (g *Graph) CancelAllJobs() {
	l := g.jobs
	for range 1000 { // each round ends a job or moves it towards null; the bound only guards a bug
		g.mu.Lock()
		l.mu.Lock()
		if len(l.jobs) == 0 {
			l.mu.Unlock()
			g.mu.Unlock()
			return
		}
		j := l.jobs[0]
		j.cancel(true)
		started, done := j.started, j.done
		l.mu.Unlock()
		g.mu.Unlock()
		if started {
			<-done
			l.mu.Lock()
			l.waitFor(func() bool { return j.exited }, syncTimeout)
			l.mu.Unlock()
		}
	}
}
