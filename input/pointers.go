package input

import "slices"

// ActivatePointer is qemu_input_handler_activate for the handler with input handler id id
// (HMP mouse_set): QEMU moves it to the head of its handler list, which query-mice shows.
// The router keeps the ids activated, oldest first; the caller knows the handlers.
func (r *Router) ActivatePointer(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.activated = slices.DeleteFunc(r.activated, func(x int64) bool { return x == id })
	r.activated = append(r.activated, id)
}

// PointerActivations lists the ids ActivatePointer was given, oldest first, each once.
func (r *Router) PointerActivations() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.activated)
}
