package main

import (
	"math"
	"strconv"
	"strings"
)

// defaultMemoryLimit is the Go runtime's soft memory limit when neither
// GOMEMLIMIT nor a cgroup limit says otherwise. With GOGC=400 (gcPercent)
// the heap may grow to five times its live size between collections: a
// 20-user, 30-day simulate burst took the server from 60 MB to 590 MB and
// it stayed there. A soft limit makes the collector run sooner as the
// process nears it instead of growing, so memory stays flat where the
// live heap is small (the embedded default's is tens of MB).
const defaultMemoryLimit = 256 << 20

// cgroupShare is the part of a container's memory limit the Go heap may
// use; the rest is goroutine stacks, the runtime, and in the embedded
// default nothing else (PostgreSQL runs as its own processes).
const cgroupShare = 0.75

// cgroupFiles are where Linux states the memory limit of the process's
// cgroup: v2's memory.max ("max" = none), then v1's limit_in_bytes (a huge
// number = none).
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// memoryLimit picks the runtime's soft memory limit: a share of the
// cgroup's limit when one is set, else defaultMemoryLimit. read returns a
// file's contents (os.ReadFile in main; fakes in tests).
func memoryLimit(read func(string) ([]byte, error)) int64 {
	for _, f := range cgroupFiles {
		raw, err := read(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(raw))
		n, err := strconv.ParseInt(v, 10, 64)
		if v == "max" || err != nil || n <= 0 || n >= math.MaxInt64/2 {
			break // no limit (v1 reports a page-rounded MaxInt64)
		}
		return int64(float64(n) * cgroupShare)
	}
	return defaultMemoryLimit
}
