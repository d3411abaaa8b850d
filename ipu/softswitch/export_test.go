package softswitch

// EntitySize exposes entitySize to the external tests.
var EntitySize = entitySize
