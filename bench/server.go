package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// WalletdPackage is the import path of the walletd command.
const WalletdPackage = "github.com/walletd/walletd/cmd/walletd"

// pprofHook is added to package main of walletd at build time (go build
// -overlay) when a profile is wanted: walletd itself does not serve
// net/http/pprof, and the harness must not change its source. It listens
// only when WALLETBENCH_PPROF_ADDR is set, on its own port, and announces
// the address on stderr the way walletd announces its own.
const pprofHook = `package main

import (
	"encoding/json"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("WALLETBENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	line, _ := json.Marshal(map[string]string{"msg": "walletbench pprof", "addr": ln.Addr().String()})
	os.Stderr.Write(append(line, '\n'))
	go http.Serve(ln, http.DefaultServeMux)
}
`

// BuildWalletd builds the walletd binary into dir and returns its path.
// With profileHook the binary also serves net/http/pprof on the address in
// WALLETBENCH_PPROF_ADDR (see pprofHook); without that variable it behaves
// exactly like the plain build.
func BuildWalletd(ctx context.Context, dir string, profileHook bool) (string, error) {
	name := "walletd"
	args := []string{"build"}
	if profileHook {
		name = "walletd-pprof"
		pkgDir, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", WalletdPackage).Output()
		if err != nil {
			return "", fmt.Errorf("locate %s: %w", WalletdPackage, err)
		}
		hook := filepath.Join(dir, "walletbench_pprof.go")
		if err := os.WriteFile(hook, []byte(pprofHook), 0o644); err != nil {
			return "", err
		}
		overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {
			filepath.Join(strings.TrimSpace(string(pkgDir)), "zz_walletbench_pprof.go"): hook,
		}})
		ov := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	bin := filepath.Join(dir, name)
	args = append(args, "-o", bin, WalletdPackage)
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// Process is a server under test running in its own process, as in
// production. Its stderr (JSON logs) goes to a file, read back only to
// learn its address and to explain a failure.
type Process struct {
	Name      string
	Addr      string // host:port it serves on
	PprofAddr string // when started with the profile hook
	cmd       *exec.Cmd
	logPath   string
	done      chan error
}

// StartProcess runs bin with args and env (added to this process's
// environment) and waits until its log announces the address it serves on:
// a JSON line with "addr" and a msg of "walletd serving" or
// "walletbench serving". Logs go to logPath.
//
// A walletd told to log only warnings and errors (WALLET_LOG_LEVEL) does not
// announce its address: it is given a free port instead of port 0, and is
// ready when GET /healthz answers 200 there. (Measuring walletd without its
// access lines is a fair question to ask of the harness.)
func StartProcess(ctx context.Context, name, bin string, args, env []string, logPath string) (*Process, error) {
	env, probe, err := quietAddr(env)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	_, wantPprof := envValue(env, "WALLETBENCH_PPROF_ADDR")
	for {
		addr, pprof := scanAddrs(logPath)
		if addr == "" && probe != "" && healthy(ctx, probe) {
			addr = probe
		}
		if addr != "" && (pprof != "" || !wantPprof) {
			p.Addr, p.PprofAddr = addr, pprof
			return p, nil
		}
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("%s exited before serving (%v):\n%s", name, err, p.LogTail(20))
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("%s did not announce its address within a minute:\n%s", name, p.LogTail(20))
		}
	}
}

// envValue is the value of key in env, the last one if it is set more than
// once (as os/exec passes it), and whether it is set at all.
func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// quietAddr returns env, with a free port in place of port 0 when the
// process will not log its serving line (WALLET_LOG_LEVEL warn or error),
// and the address to probe for readiness ("" to rely on the log). The port
// is free when picked; should another process take it before walletd
// binds it, walletd exits saying so and StartProcess reports that.
func quietAddr(env []string) ([]string, string, error) {
	level, _ := envValue(env, "WALLET_LOG_LEVEL")
	switch strings.ToLower(level) {
	case "warn", "error":
	default:
		return env, "", nil
	}
	addr, ok := envValue(env, "WALLET_HTTP_ADDR")
	if !ok {
		addr = "127.0.0.1:8080" // walletd's default
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("WALLET_HTTP_ADDR=%q: %w", addr, err)
	}
	if port != "0" {
		// The readiness probe cannot tell this walletd from another server
		// already on the port (this one would then fail to bind and exit).
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", fmt.Errorf("WALLET_HTTP_ADDR=%s is not free, and a walletd that does not log its address can only be found by it: %w", addr, err)
		}
		_ = ln.Close()
		return env, probeAddr(host, port), nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, "", fmt.Errorf("pick a port for a walletd that does not log its address: %w", err)
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	_, port, _ = net.SplitHostPort(addr)
	return append(slices.Clip(env), "WALLET_HTTP_ADDR="+addr), probeAddr(host, port), nil
}

// probeAddr is where to reach a server listening on host:port; a wildcard
// host is reached on loopback.
func probeAddr(host, port string) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// healthy reports whether GET /healthz at addr answers 200.
func healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scanAddrs finds the serving and pprof addresses in a log.
func scanAddrs(path string) (addr, pprof string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Addr == "" {
			continue
		}
		switch rec.Msg {
		case "walletd serving", "walletbench serving":
			addr = rec.Addr
		case "walletbench pprof":
			pprof = rec.Addr
		}
	}
	return addr, pprof
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// URL is the server's base URL.
func (p *Process) URL() string { return "http://" + p.Addr }

// Stop ends the process with SIGTERM (a graceful shutdown, which walletd
// must do cleanly) and waits up to timeout before killing it.
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("%s stopped with %v:\n%s", p.Name, err, p.LogTail(10))
		}
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not stop within %s; killed", p.Name, timeout)
	}
}

func (p *Process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// WalletdEnv is the environment of a walletd under test: port 0, the
// operator key, the embedded store in dataDir or Postgres at dsn. Rate limits
// are off: the benchmark measures the engine, and the default gameplay
// policy (50 bets/s per player) would refuse most of a hot wallet's load by
// design.
func WalletdEnv(apiKey, dataDir, dsn string) []string {
	env := []string{
		"WALLET_HTTP_ADDR=127.0.0.1:0",
		"WALLET_API_KEYS=" + apiKey,
		"WALLET_RATE_GAMEPLAY=off",
		"WALLET_RATE_AUTH=off",
		"WALLET_DATA_DIR=" + dataDir,
		"WALLET_PG_DSN=" + dsn,
	}
	return env
}
