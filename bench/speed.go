package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
)

// Speed is how fast the machine ran fixed workloads. The same code
// measures the same on the same hardware, so when a suite's figures differ
// from another run's, its speed says whether the machine did: on a shared or
// virtual machine the same binary can take twice the CPU time from one hour
// to the next, and walletd, bound by the cores, follows that more than the
// naive design, bound largely by its row lock, does.
type Speed struct {
	// HashMBps: SHA-256 over speedHashBytes on one core, the best of
	// speedHashRounds, in MB/s: plain computation.
	HashMBps float64 `json:"sha256_mb_s"`
	// LoopbackRTTus: the mean round trip of one byte over a TCP connection
	// on 127.0.0.1 between two goroutines, in µs: the system calls and
	// wake-ups every HTTP request of the suite pays at least twice.
	LoopbackRTTus float64 `json:"loopback_rtt_us"`
	// PGCommitus: the mean time of one-row INSERTs committed one after
	// another on the suite's Postgres server, in µs: a round trip plus a
	// flush of the WAL to disk. The naive design pays it with its row
	// lock held, once per bet, while walletd shares one among all the
	// events of a group commit, so the ratios between them follow the
	// disk: on a VM whose flush took 51 µs (pg_test_fsync) the naive
	// design ran 2–2.7 times as fast as on the VM before it, walletd
	// 1.3–1.6 times (docs/benchmarks.md). Zero when the suite uses no
	// Postgres.
	PGCommitus float64 `json:"pg_commit_us,omitempty"`
}

// String is the speed as the progress log and the report print it.
func (s Speed) String() string {
	line := fmt.Sprintf("SHA-256 %.0f MB/s on one core, TCP loopback round trip %.1f µs", s.HashMBps, s.LoopbackRTTus)
	if s.PGCommitus > 0 {
		line += fmt.Sprintf(", Postgres commit %.0f µs", s.PGCommitus)
	}
	return line
}

// SpeedProbe is the machine's speed before the first measured run and after
// the last one.
type SpeedProbe struct {
	Before Speed  `json:"before"`
	After  *Speed `json:"after,omitempty"`
}

const (
	speedHashBytes   = 32 << 20
	speedHashRounds  = 3
	speedRoundTrips  = 5000
	speedWarmupTrips = 200
	speedCommits     = 1000
	speedWarmCommits = 50
)

// MeasureSpeed runs the computation and the round trips (the Postgres
// commit is measured by a commitProbe, where the suite has a server), in
// about half a second on a development machine.
func MeasureSpeed(ctx context.Context) (Speed, error) {
	hash := hashSpeed()
	rtt, err := loopbackRTT(ctx, speedWarmupTrips, speedRoundTrips)
	if err != nil {
		return Speed{}, fmt.Errorf("loopback round trips: %w", err)
	}
	return Speed{HashMBps: round1(hash), LoopbackRTTus: round1(rtt.Seconds() * 1e6)}, nil
}

// hashSpeed returns SHA-256's throughput in MB/s, the best of a few rounds
// (the fastest round is the one least disturbed by anything else).
func hashSpeed() float64 {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	best := time.Duration(0)
	for range speedHashRounds {
		start := time.Now()
		h := sha256.New()
		for n := 0; n < speedHashBytes; n += len(buf) {
			h.Write(buf)
		}
		h.Sum(nil)
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	return float64(speedHashBytes) / 1e6 / best.Seconds()
}

// loopbackRTT returns the mean time of n one-byte round trips over a TCP
// connection on 127.0.0.1, after warmup unmeasured ones.
func loopbackRTT(ctx context.Context, warmup, n int) (time.Duration, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				if err == io.EOF {
					err = nil
				}
				echoed <- err
				return
			}
			if _, err := c.Write(b); err != nil {
				echoed <- err
				return
			}
		}
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	b := []byte{1}
	var start time.Time
	for i := range warmup + n {
		if i == warmup {
			start = time.Now()
		}
		if _, err := c.Write(b); err != nil {
			c.Close()
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			c.Close()
			return 0, err
		}
	}
	took := time.Since(start)
	c.Close()
	if err := <-echoed; err != nil {
		return 0, err
	}
	return took / time.Duration(n), nil
}

// commitProbe measures commits on a database of its own, created once per
// suite (dropping a database makes Postgres checkpoint, which should not
// happen between the probe and the first run).
type commitProbe struct {
	db   *TempDatabase
	conn *pgx.Conn
}

func newCommitProbe(ctx context.Context, serverDSN string) (*commitProbe, error) {
	db, err := CreateDatabase(ctx, serverDSN, "speed")
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, db.DSN)
	if err == nil {
		// A logged table: an unlogged or temporary one skips the WAL
		// flush the probe is about.
		_, err = conn.Exec(ctx, "CREATE TABLE commit_probe (n int NOT NULL)")
	}
	if err != nil {
		if conn != nil {
			conn.Close(context.Background())
		}
		return nil, errors.Join(err, db.Drop())
	}
	return &commitProbe{db: db, conn: conn}, nil
}

// measure returns the mean time of n autocommitted one-row INSERTs, after
// warmup unmeasured ones, in µs.
func (p *commitProbe) measure(ctx context.Context, warmup, n int) (float64, error) {
	var start time.Time
	for i := range warmup + n {
		if i == warmup {
			start = time.Now()
		}
		if _, err := p.conn.Exec(ctx, "INSERT INTO commit_probe VALUES ($1)", i); err != nil {
			return 0, fmt.Errorf("commit probe: %w", err)
		}
	}
	return round1(time.Since(start).Seconds() * 1e6 / float64(n)), nil
}

func (p *commitProbe) close() error {
	p.conn.Close(context.Background())
	return p.db.Drop()
}
