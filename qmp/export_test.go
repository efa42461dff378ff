package qmp

// SetLimits shrinks the streamer's limits for a test and returns a function restoring them.
func SetLimits(tokenSize, tokenCount, nesting int) (restore func()) {
	a, b, c := maxTokenSize, maxTokenCount, maxNesting
	maxTokenSize, maxTokenCount, maxNesting = tokenSize, tokenCount, nesting
	return func() { maxTokenSize, maxTokenCount, maxNesting = a, b, c }
}
