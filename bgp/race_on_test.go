//go:build race

package bgp

// raceDetector: timings under -race are several times slower and grow
// faster with the heap (the detector's shadow memory).
const raceDetector = true
