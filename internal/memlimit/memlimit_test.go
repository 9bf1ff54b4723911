package memlimit

import (
	"io/fs"
	"testing"
)

func TestContainer(t *testing.T) {
	const (
		v2Self   = "0::/kubepods/pod1/c1\n"
		v1Self   = "12:pids:/x\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
		hybrid   = "4:memory:/process_api/a4\n0::/\n"
		v1Joined = "5:cpuacct,memory:/docker/abc\n"
	)
	for _, tc := range []struct {
		name       string
		files      map[string]string
		want       int64
		wantSource string
	}{
		{"cgroup v2, the cgroup's own limit", map[string]string{
			"/proc/self/cgroup": v2Self, "/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "2147483648\n",
		}, 2147483648, "/sys/fs/cgroup/kubepods/pod1/c1/memory.max"},
		{"cgroup v2 in a cgroup namespace: the mount's root", map[string]string{
			"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "1073741824",
		}, 1073741824, "/sys/fs/cgroup/memory.max"},
		{"cgroup v2 path not visible: the mount's root", map[string]string{
			"/proc/self/cgroup": v2Self, "/sys/fs/cgroup/memory.max": "536870912\n",
		}, 536870912, "/sys/fs/cgroup/memory.max"},
		{"cgroup v2 without a limit", map[string]string{
			"/proc/self/cgroup": v2Self, "/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "max\n",
		}, 0, ""},
		{"cgroup v1", map[string]string{
			"/proc/self/cgroup": v1Self, "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "4294967296\n",
		}, 4294967296, "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"},
		{"cgroup v1, memory joined with another controller", map[string]string{
			"/proc/self/cgroup": v1Joined, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456",
		}, 268435456, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"cgroup v1 without a limit (hybrid, as on the dev VM)", map[string]string{
			"/proc/self/cgroup": hybrid, "/sys/fs/cgroup/memory/process_api/a4/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0, ""},
		{"no cgroup file system", map[string]string{"/proc/self/cgroup": v2Self}, 0, ""},
		{"not Linux", map[string]string{}, 0, ""},
		{"garbage", map[string]string{"/proc/self/cgroup": v2Self, "/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "lots"}, 0, ""},
		{"zero", map[string]string{"/proc/self/cgroup": v2Self, "/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "0"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := func(name string) ([]byte, error) {
				if v, ok := tc.files[name]; ok {
					return []byte(v), nil
				}
				return nil, fs.ErrNotExist
			}
			got, source := Container(read)
			if got != tc.want || source != tc.wantSource {
				t.Fatalf("got %d from %q, want %d from %q", got, source, tc.want, tc.wantSource)
			}
		})
	}
}
