package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// TestMain removes the binaries built for the process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" && buildErr == nil {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds walletd and walletctl once per test run.
func binaries(t *testing.T) (walletd, walletctl string) {
	t.Helper()
	if testing.Short() {
		t.Skip("process tests build and run the binaries; skipped with -short")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "walletd-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator), "../walletd", "../walletctl").CombinedOutput()
		if err != nil {
			buildErr = err
			binDir = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, binDir)
	}
	return filepath.Join(binDir, "walletd"), filepath.Join(binDir, "walletctl")
}

// proc is a walletd process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

func startProc(t *testing.T, dataDir string, extraEnv ...string) *proc {
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "WALLET_HTTP_ADDR=127.0.0.1:0", "WALLET_DATA_DIR="+dataDir, "WALLET_API_KEYS="+testKey)
	cmd.Env = append(cmd.Env, extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "walletd serving" {
				addr <- rec.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	// Wait closes the pipe, so it must follow the last read (os/exec docs).
	go func() { <-readDone; p.done <- cmd.Wait() }()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-p.done:
		t.Fatalf("walletd exited at start: %v\n%s", err, p.logs.String())
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("walletd did not start\n%s", p.logs.String())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// server wraps the process for the request helpers of the e2e tests.
func (p *proc) server() *testServer { return &testServer{t: p.t, base: p.base, logs: p.logs} }

func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and returns the exit error (nil: exit code 0).
func (p *proc) stop() error {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Fatalf("walletd did not stop on SIGTERM\n%s", p.logs.String())
		return nil
	}
}

// walletctl runs the operators' tool on a data folder; leading NAME=value
// arguments are added to its environment.
func walletctl(t *testing.T, dataDir string, args ...string) (string, int) {
	t.Helper()
	_, bin := binaries(t)
	env := append(os.Environ(), "WALLET_DATA_DIR="+dataDir)
	for len(args) > 0 && strings.Contains(args[0], "=") {
		env, args = append(env, args[0]), args[1:]
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("walletctl: %v", err)
	}
	return strings.TrimSpace(string(out)), code
}
