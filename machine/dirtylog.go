package machine

// ResumeDirtyLog turns logging on without clearing the dirty bitmap: SyncDirtyLog then
// reports every page written since the last sync (the dirty bit is maintained at all
// times). An incremental checkpoint uses it to send exactly the pages written since the
// previous checkpoint of the same file.
func (b *RAMBlock) ResumeDirtyLog() { b.logging.Store(true) }
