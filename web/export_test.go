package web

// GoroutinesIn is goroutinesIn, for the external tests.
var GoroutinesIn = goroutinesIn
