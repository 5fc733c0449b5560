package idmap

// SetFlightWaitHook sets the function called when a Get starts waiting for
// another's load of the same key (tests only).
func SetFlightWaitHook(f func()) { flightWaitHook = f }
