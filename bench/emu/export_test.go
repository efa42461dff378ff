package emu

// InotifyNames exposes inotifyNames to the external tests.
var InotifyNames = inotifyNames
