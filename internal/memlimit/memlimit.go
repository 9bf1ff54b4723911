// Package memlimit finds the memory limit of the container walletd runs in,
// so that the Go runtime can be told to collect harder as the heap nears it
// instead of being killed for crossing it. walletd runs its collector with
// GOGC=400 (a heap up to five times the live data, for less CPU per
// request): in a container with a memory limit and no GOMEMLIMIT, a live
// heap of a fifth of the limit could get the process killed.
package memlimit

import (
	"bufio"
	"bytes"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Share of the container's limit given to the Go runtime as its soft limit:
// the rest is for what the runtime does not count (thread stacks outside the
// heap, the embedded store's page cache in C memory, the kernel's socket
// buffers charged to the container).
const Share = 0.9

// unlimited: cgroup v1 reports "no limit" as a huge number rounded down to a
// page (9223372036854771712); anything from 2^62 on is taken as none.
const unlimited = 1 << 62

// Container returns the memory limit of the cgroup the process is in, in
// bytes, and the file it was read from; 0 and "" when there is none (no
// limit set, no cgroup file system, an unreadable value). readFile reads a
// file (os.ReadFile outside tests). Both cgroup versions are read: v2's
// memory.max, and v1's memory.limit_in_bytes of the memory controller. The
// cgroup's own file is tried first, then the root of the mount, which is the
// container's own cgroup when the container has a cgroup namespace.
func Container(readFile func(string) ([]byte, error)) (limit int64, source string) {
	self, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0, ""
	}
	var candidates []string
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-id:controllers:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			candidates = append(candidates,
				path.Join("/sys/fs/cgroup", f[2], "memory.max"), "/sys/fs/cgroup/memory.max")
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			candidates = append(candidates,
				path.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes"), "/sys/fs/cgroup/memory/memory.limit_in_bytes")
		}
	}
	for _, file := range candidates {
		b, err := readFile(file)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, ""
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= unlimited {
			return 0, ""
		}
		return n, file
	}
	return 0, ""
}
