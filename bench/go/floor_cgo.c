/* The C floor (bench/floor.c), compiled into the Go benchmark by cgo. */
#include "../floor.c"
