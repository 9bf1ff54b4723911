package bench

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPUProbe samples where the machine's CPU goes during a run: the load
// generator (this process), the server under test, Postgres, and the
// machine as a whole. On a 2-core box with the generator on it, the split
// says what bounds the throughput. It reads /proc and reports zeros where
// there is none.
type CPUProbe struct {
	ServerPID int  // 0: not measured (a server in this process)
	Postgres  bool // sum every process named postgres
	procDir   string
}

// NewCPUProbe returns a probe of the server process pid (0 for none).
func NewCPUProbe(pid int, postgres bool) *CPUProbe {
	return &CPUProbe{ServerPID: pid, Postgres: postgres, procDir: "/proc"}
}

// CPUSample is cumulative CPU time at one instant.
type CPUSample struct {
	Wall      time.Duration // since the Unix epoch
	Generator time.Duration
	Server    time.Duration
	Postgres  time.Duration
	Busy      time.Duration // all CPUs, not idle
}

// CPUUse is the CPU used between two samples, in cores (CPU seconds per
// second): 2.0 is both cores of a 2-core machine.
type CPUUse struct {
	Generator float64 `json:"generator"`
	Server    float64 `json:"server"`
	Postgres  float64 `json:"postgres"`
	Machine   float64 `json:"machine"`
}

// Other is what the rest of the machine used: the kernel's work for no one
// process in particular, and anything else running (another benchmark or
// build makes the figures noisy, and shows here).
func (u CPUUse) Other() float64 {
	return max(0, round3(u.Machine-u.Generator-u.Server-u.Postgres))
}

// clockTick is the unit of /proc times (USER_HZ, 100 on every Linux ABI).
const clockTick = 10 * time.Millisecond

// Sample reads the counters now.
func (p *CPUProbe) Sample() CPUSample {
	s := CPUSample{Wall: time.Duration(time.Now().UnixNano()), Generator: selfCPU()}
	if p.ServerPID > 0 {
		s.Server = p.procCPU(strconv.Itoa(p.ServerPID), false)
	}
	if p.Postgres {
		dirs, _ := filepath.Glob(filepath.Join(p.procDir, "[0-9]*"))
		for _, d := range dirs {
			if comm, err := os.ReadFile(filepath.Join(d, "comm")); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
				// With the time of exited children: a connection's backend
				// that ends during the run leaves its time to the postmaster.
				s.Postgres += p.procCPU(filepath.Base(d), true)
			}
		}
	}
	s.Busy = p.machineBusy()
	return s
}

// Sub returns the use between an earlier sample o and s.
func (s CPUSample) Sub(o CPUSample) CPUUse {
	wall := (s.Wall - o.Wall).Seconds()
	if wall <= 0 {
		return CPUUse{}
	}
	cores := func(a, b time.Duration) float64 { return round3((a - b).Seconds() / wall) }
	return CPUUse{
		Generator: cores(s.Generator, o.Generator),
		Server:    cores(s.Server, o.Server),
		Postgres:  cores(s.Postgres, o.Postgres),
		Machine:   cores(s.Busy, o.Busy),
	}
}

// procCPU reads utime+stime (and the children's with children) of a process.
func (p *CPUProbe) procCPU(pid string, children bool) time.Duration {
	b, err := os.ReadFile(filepath.Join(p.procDir, pid, "stat"))
	if err != nil {
		return 0
	}
	return statCPU(string(b), children)
}

// statCPU parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from its closing ")".
func statCPU(stat string, children bool) time.Duration {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0
	}
	n := func(field int) int64 { v, _ := strconv.ParseInt(f[field-3], 10, 64); return v }
	ticks := n(14) + n(15) // utime, stime
	if children {
		ticks += n(16) + n(17) // cutime, cstime
	}
	return time.Duration(ticks) * clockTick
}

// machineBusy reads the non-idle time of all CPUs from /proc/stat.
func (p *CPUProbe) machineBusy() time.Duration {
	b, err := os.ReadFile(filepath.Join(p.procDir, "stat"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0
	}
	var total, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest times are already counted in user
			break
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(total-idle) * clockTick
}

// PerRequest converts cores into CPU microseconds per request at rps: a
// figure that, unlike throughput, hardly moves when something else on the
// machine takes cores away.
func (u CPUUse) PerRequest(rps float64) (generator, server, postgres float64) {
	if rps <= 0 {
		return 0, 0, 0
	}
	us := func(cores float64) float64 { return math.Round(cores * 1e6 / rps) }
	return us(u.Generator), us(u.Server), us(u.Postgres)
}
