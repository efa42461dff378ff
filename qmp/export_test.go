package qmp

// SetLimits shrinks the streamer's limits for a test and returns a function restoring them.
func SetLimits(tokenSize, tokenCount, nesting int) (restore func()) {
	a, b, c := maxTokenSize, maxTokenCount, maxNesting
	maxTokenSize, maxTokenCount, maxNesting = tokenSize, tokenCount, nesting
	return func() { maxTokenSize, maxTokenCount, maxNesting = a, b, c }
}

// SetTokenBuffers shrinks the sizes at which a token leaves the small buffer and of its
// chunks, so that short test inputs take the long-token paths.
func SetTokenBuffers(small, chunk int) (restore func()) {
	a, b := smallToken, tokenChunk
	smallToken, tokenChunk = small, chunk
	return func() { smallToken, tokenChunk = a, b }
}
