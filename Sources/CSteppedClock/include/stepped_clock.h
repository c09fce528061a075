// A preload library for the fault suite: the wall clock of the process it is loaded into
// runs at an offset read from a file. See stepped_clock.c.
