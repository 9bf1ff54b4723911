package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Mix weighs the operations a virtual user sends. A win or rollback always
// settles one of the user's own open bets (so it is valid, as a game
// server's would be); when the user has none open it bets instead, and a
// user with 4 open bets settles one before betting again. Half the wins
// are 0.00 (a lost round). A retry sends the user's previous request again,
// byte for byte, as a game server does after a timeout: same tx_id,
// expected answer "duplicate".
type Mix struct {
	Bet, Win, Rollback, Retry int
}

// DefaultMix is the standard suite's: rounds of a bet and its settlement —
// a win (0.00 half the time: a lost round) or, rarely, a rollback — and a
// few retries.
func DefaultMix() Mix { return Mix{Bet: 50, Win: 42, Rollback: 3, Retry: 5} }

// ParseMix parses "bet=60,win=30,rollback=5,retry=5" (missing kinds weigh 0).
func ParseMix(s string) (Mix, error) {
	var m Mix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return Mix{}, fmt.Errorf("mix %q: want kind=weight pairs like bet=60,win=30,rollback=5,retry=5", s)
		}
		switch strings.TrimSpace(k) {
		case "bet":
			m.Bet = n
		case "win":
			m.Win = n
		case "rollback":
			m.Rollback = n
		case "retry":
			m.Retry = n
		default:
			return Mix{}, fmt.Errorf("mix %q: unknown kind %q (bet, win, rollback, retry)", s, k)
		}
	}
	if m.Bet <= 0 {
		return Mix{}, fmt.Errorf("mix %q: bet needs a positive weight (wins and rollbacks settle bets)", s)
	}
	return m, nil
}

func (m Mix) String() string {
	return fmt.Sprintf("bet=%d,win=%d,rollback=%d,retry=%d", m.Bet, m.Win, m.Rollback, m.Retry)
}

func (m Mix) total() int { return m.Bet + m.Win + m.Rollback + m.Retry }

// opChoice is what a user decides to send next.
type opChoice uint8

const (
	chooseBet opChoice = iota
	chooseWin
	chooseRollback
	chooseRetry
)

func (m Mix) choose(r *rand.Rand) opChoice {
	n := r.IntN(m.total())
	switch {
	case n < m.Bet:
		return chooseBet
	case n < m.Bet+m.Win:
		return chooseWin
	case n < m.Bet+m.Win+m.Rollback:
		return chooseRollback
	}
	return chooseRetry
}

// Skew says how users pick the wallet of a new bet.
type Skew struct {
	Kind string  // "hot", "uniform" or "zipf"
	S    float64 // zipf exponent (> 1)
}

// ParseSkew parses "hot", "uniform", "zipf" or "zipf:1.2".
func ParseSkew(s string) (Skew, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch kind {
	case "hot", "uniform":
		if hasArg {
			return Skew{}, fmt.Errorf("skew %q: %s takes no parameter", s, kind)
		}
		return Skew{Kind: kind}, nil
	case "zipf":
		sk := Skew{Kind: "zipf", S: 1.1}
		if hasArg {
			v, err := strconv.ParseFloat(arg, 64)
			if err != nil || v <= 1 {
				return Skew{}, fmt.Errorf("skew %q: the zipf exponent must be a number > 1", s)
			}
			sk.S = v
		}
		return sk, nil
	}
	return Skew{}, fmt.Errorf("skew %q: want hot, uniform or zipf[:s]", s)
}

func (s Skew) String() string {
	if s.Kind == "zipf" {
		return "zipf:" + strconv.FormatFloat(s.S, 'g', -1, 64)
	}
	return s.Kind
}

// picker returns a function choosing a wallet index in [0, n) with r. Hot
// always answers 0: every user hammers one wallet.
func (s Skew) picker(r *rand.Rand, n int) func() int {
	switch {
	case s.Kind == "hot" || n <= 1:
		return func() int { return 0 }
	case s.Kind == "zipf":
		z := rand.NewZipf(r, s.S, 1, uint64(n-1))
		return func() int { return int(z.Uint64()) }
	}
	return func() int { return r.IntN(n) }
}

// Workload is one load run.
type Workload struct {
	// Users is the number of virtual users (concurrent requests at most).
	Users int
	// Skew picks the wallet of each new bet among the run's wallets.
	Skew Skew
	Mix  Mix
	// Duration of the measured phase; or Requests, a count of measured
	// requests (Requests wins when both are set).
	Duration time.Duration
	Requests int
	// Warmup runs the same load before measuring; its requests change the
	// wallets (and are checked) but are left out of every figure.
	Warmup time.Duration
	// Rate > 0 makes an open loop: requests are due at a fixed rate
	// (requests/s, all users together) and latency runs from when a
	// request was due, not when it was sent, so a server that stalls is
	// charged for every request it delayed (no coordinated omission).
	// Users then bounds the requests in flight. Rate 0: a closed loop, each
	// user sending its next request when the previous one is answered.
	Rate float64
	// Seed makes the choices of users reproducible.
	Seed uint64
}

// Validate reports what is wrong with w.
func (w Workload) Validate() error {
	var errs []error
	if w.Users <= 0 {
		errs = append(errs, errors.New("users must be positive"))
	}
	if w.Duration <= 0 && w.Requests <= 0 {
		errs = append(errs, errors.New("set a duration or a request count"))
	}
	if w.Mix.Bet <= 0 {
		errs = append(errs, errors.New("the mix needs bets"))
	}
	if w.Rate < 0 || w.Warmup < 0 {
		errs = append(errs, errors.New("rate and warm-up cannot be negative"))
	}
	if w.Skew.Kind == "" {
		errs = append(errs, errors.New("skew is required"))
	}
	return errors.Join(errs...)
}

// Mode is "closed" or "open".
func (w Workload) Mode() string {
	if w.Rate > 0 {
		return "open"
	}
	return "closed"
}
