package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is a server under test.
type Target struct {
	// System names it in reports: walletd-embedded, walletd-postgres,
	// naive-postgres, ceiling.
	System string
	URL    string
	APIKey string
	// PID of the server process, for its CPU use (0: unknown).
	PID int
	// Stateless: the server keeps no wallets (the ceiling), so there is
	// nothing to check after a run.
	Stateless bool
}

// RunSpec is one measured run against a target.
type RunSpec struct {
	Target   Target
	Scenario string // label in reports ("hot", "uniform", ...)
	Workload Workload
	// Wallets the users bet on (already opened and funded, see Setup).
	Wallets []string
	// Protocol sends the money requests; Reader (usually the same generic
	// Client) reads wallets back for the check. Reader nil: no check.
	Protocol Protocol
	Reader   Reader
	Ledger   *Ledger
	// CheckWorkers: concurrent reads of the check (default 16).
	CheckWorkers int
	// CPU, if set, is sampled when measuring starts and ends.
	CPU *CPUProbe
	// OnMeasure, if set, is called (in its own goroutine) when the measured
	// phase starts, with its expected length (0 in request-count mode);
	// the suite starts a CPU profile there.
	OnMeasure func(time.Duration)
}

// sample is one measured request.
type sample struct {
	at  time.Duration // when it was sent (open loop: when it was due), since measuring began
	lat time.Duration
	ok  bool
}

// user is one virtual user: its own random source, wallets picker, open
// bets and records, touched by its goroutine only.
type user struct {
	r       *mrand.Rand
	pick    func() int
	wallets []string
	mix     Mix
	prefix  string
	n       uint64
	pending []Op // acknowledged bets not yet settled, oldest first
	last    Op
	hasLast bool
	tape    Tape
	samples []sample
	codes   map[string]int64
}

// maxPending bounds a user's open bets. At the bound, a user whose mix
// settles bets settles one before it bets again, so no bet is ever left open
// for good: a casino round always ends, with a win (0.00 for a loss) or a
// rollback, and a wallet's open bets stay few, as in production.
const maxPending = 4

// lossPct is the share of settled rounds the player lost: their win is 0.00.
const lossPct = 50

func (u *user) id(kind byte) string {
	u.n++
	return u.prefix + string(kind) + strconv.FormatUint(u.n, 10)
}

// next decides the user's next operation.
func (u *user) next() Op {
	choice := u.mix.choose(u.r)
	if choice == chooseBet && len(u.pending) >= maxPending && u.mix.Win+u.mix.Rollback > 0 {
		choice = chooseWin
		if u.r.IntN(u.mix.Win+u.mix.Rollback) >= u.mix.Win {
			choice = chooseRollback
		}
	}
	switch choice {
	case chooseRetry:
		if u.hasLast {
			op := u.last
			op.Retry = true
			return op
		}
	case chooseWin:
		if bet, ok := u.takeBet(); ok {
			win := int64(0)
			if u.r.IntN(100) >= lossPct {
				win = 1 + u.r.Int64N(2*bet.Amount)
			}
			return Op{Wallet: bet.Wallet, Kind: KindWin, TxID: u.id('w'), Ref: bet.TxID, Amount: win}
		}
	case chooseRollback:
		if bet, ok := u.takeBet(); ok {
			return Op{Wallet: bet.Wallet, Kind: KindRollback, TxID: u.id('r'), Ref: bet.TxID, Amount: bet.Amount}
		}
	}
	id := u.id('b')
	return Op{Wallet: u.wallets[u.pick()], Kind: KindBet, TxID: id, RoundID: id, Amount: 1 + u.r.Int64N(100)}
}

func (u *user) takeBet() (Op, bool) {
	if len(u.pending) == 0 {
		return Op{}, false
	}
	i := u.r.IntN(len(u.pending))
	bet := u.pending[i]
	u.pending = append(u.pending[:i], u.pending[i+1:]...)
	return bet, true
}

// settle records the outcome of op.
func (u *user) settle(op Op, rep Reply, err error) bool {
	u.last, u.hasLast = op, true
	switch {
	case err != nil:
		u.tape.Doubt(op)
		u.codes["TRANSPORT"]++
		return false
	case rep.OK():
		u.tape.Ack(op, rep)
		if op.Kind == KindBet && !op.Retry {
			if len(u.pending) == maxPending { // a mix without settlements
				u.pending = u.pending[1:]
			}
			u.pending = append(u.pending, op)
		}
		return true
	case rep.Status >= 500 || rep.Status == 0:
		// UNAVAILABLE after a timeout may have committed after all.
		u.tape.Doubt(op)
	}
	u.codes[rep.Code]++
	return false
}

// Execute runs spec: warm-up, the measured phase, then the check.
func Execute(ctx context.Context, spec RunSpec) (Result, error) {
	w := spec.Workload
	if err := w.Validate(); err != nil {
		return Result{}, err
	}
	if len(spec.Wallets) == 0 || spec.Protocol == nil {
		return Result{}, fmt.Errorf("bench: a run needs wallets to bet on and a protocol to send with")
	}
	if spec.Ledger == nil {
		spec.Ledger = NewLedger()
	}
	seed := w.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	tag := runTag()
	users := make([]*user, w.Users)
	for i := range users {
		r := mrand.New(mrand.NewPCG(seed, uint64(i)))
		users[i] = &user{
			r: r, pick: w.Skew.picker(r, len(spec.Wallets)), wallets: spec.Wallets, mix: w.Mix,
			prefix: tag + "-u" + strconv.Itoa(i) + "-", codes: map[string]int64{},
		}
	}

	start := time.Now()
	measureStart := start.Add(w.Warmup)
	end := measureStart.Add(w.Duration)
	countMode := w.Requests > 0
	var measuredTickets atomic.Int64
	var cpu0 CPUSample
	var eng0 engineCounters
	var cpuOnce sync.WaitGroup
	if spec.CPU != nil || spec.OnMeasure != nil {
		cpuOnce.Add(1)
		go func() {
			defer cpuOnce.Done()
			select {
			case <-time.After(time.Until(measureStart)):
			case <-ctx.Done():
				return
			}
			if spec.CPU != nil {
				cpu0 = spec.CPU.Sample()
				eng0 = scrapeEngine(ctx, spec.Target.URL)
			}
			if spec.OnMeasure != nil {
				length := w.Duration
				if countMode {
					length = 0
				}
				go spec.OnMeasure(length)
			}
		}()
	}

	// Requests are sent with a context that is never cancelled: a request
	// abandoned halfway would leave its outcome in doubt. ctx only stops
	// users from starting new ones.
	reqCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	if w.Rate <= 0 {
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					t0 := time.Now()
					measured := !t0.Before(measureStart)
					if measured {
						if countMode {
							if measuredTickets.Add(1) > int64(w.Requests) {
								return
							}
						} else if !t0.Before(end) {
							return
						}
					}
					op := u.next()
					rep, err := spec.Protocol.Do(reqCtx, op)
					lat := time.Since(t0)
					ok := u.settle(op, rep, err)
					if measured {
						u.samples = append(u.samples, sample{at: t0.Sub(measureStart), lat: lat, ok: ok})
					}
				}
			}()
		}
	} else {
		interval := float64(time.Second) / w.Rate
		warmTickets := int64(float64(w.Warmup) / interval)
		var tickets atomic.Int64
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					i := tickets.Add(1) - 1
					due := start.Add(time.Duration(float64(i) * interval))
					measured := i >= warmTickets
					if countMode {
						if i >= warmTickets+int64(w.Requests) {
							return
						}
					} else if !due.Before(end) {
						return
					}
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					op := u.next()
					rep, err := spec.Protocol.Do(reqCtx, op)
					// From when the request was due: time spent waiting
					// for a free user counts, as it would for a player.
					lat := time.Since(due)
					ok := u.settle(op, rep, err)
					if measured {
						u.samples = append(u.samples, sample{at: due.Sub(measureStart), lat: lat, ok: ok})
					}
				}
			}()
		}
	}
	wg.Wait()
	finished := time.Now()
	cpuOnce.Wait()
	var cpu1 CPUSample
	var eng1 engineCounters
	if spec.CPU != nil {
		cpu1 = spec.CPU.Sample()
		eng1 = scrapeEngine(ctx, spec.Target.URL)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	var all []sample
	codes := map[string]int64{}
	for _, u := range users {
		all = append(all, u.samples...)
		spec.Ledger.Append(&u.tape)
		for c, n := range u.codes {
			codes[c] += n
		}
	}
	window := w.Duration
	if countMode {
		window = finished.Sub(measureStart)
	}
	res := summarize(all, window)
	res.System = spec.Target.System
	res.Scenario = spec.Scenario
	res.Users = w.Users
	res.Wallets = len(spec.Wallets)
	res.Mode = w.Mode()
	res.Rate = w.Rate
	res.Mix = w.Mix.String()
	res.Skew = w.Skew.String()
	res.WarmupS = w.Warmup.Seconds()
	if spec.Protocol != nil {
		res.Format = spec.Protocol.Name()
	}
	if len(codes) > 0 {
		res.ErrorCodes = codes
	}
	if spec.CPU != nil && cpu0.Wall > 0 {
		u := cpu1.Sub(cpu0)
		res.CPU = &u
		res.Engine = eng1.stats(eng0)
	}

	if spec.Reader != nil && !spec.Target.Stateless {
		rep := spec.Ledger.Check(ctx, spec.Reader, orDefault(spec.CheckWorkers, 16))
		res.Checked = true
		res.CheckedWallets = rep.Wallets
		res.CheckedTransactions = rep.Transactions
		res.InDoubt = rep.InDoubt
		res.Discrepancies = len(rep.Discrepancies)
		res.DiscrepancyDetails = rep.Discrepancies[:min(len(rep.Discrepancies), 20)]
	}
	return res, nil
}

// orDefault returns v, or def when v is not positive.
func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// runTag makes the tx ids of one run unique on a server that outlives it.
func runTag() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Setup opens the wallets and funds each with deposit cents, with workers
// concurrent requests, recording the deposits in the ledger.
func Setup(ctx context.Context, c *Client, l *Ledger, ids []string, deposit int64, workers int) error {
	l.Add(ids...)
	next := make(chan string)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	tapes := make([]Tape, max(workers, 1))
	for i := range tapes {
		wg.Add(1)
		go func(t *Tape) {
			defer wg.Done()
			for id := range next {
				err := c.CreateWallet(ctx, id)
				if err == nil {
					op := Op{Wallet: id, Kind: KindDeposit, TxID: "fund-" + id, Amount: deposit}
					var rep Reply
					rep, err = c.Do(ctx, op)
					switch {
					case err != nil:
						t.Doubt(op)
					case rep.OK():
						t.Ack(op, rep)
					default:
						err = fmt.Errorf("fund %s: %s", id, rep.Code)
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}(&tapes[i])
	}
loop:
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
			break loop
		case err := <-errs:
			errs <- err
			break loop
		}
	}
	close(next)
	wg.Wait()
	for i := range tapes {
		l.Append(&tapes[i])
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	return ctx.Err()
}

// WalletIDs names n wallets with prefix.
func WalletIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	return ids
}
