package http

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/requestid"
	"github.com/walletd/walletd/wallet"
)

// fakeWallets is actors.Wallets on the real wallet.State, one per player,
// behind a mutex, with no store. It records every call.
type fakeWallets struct {
	mu      sync.Mutex
	wallets map[string]*wallet.State
	journal map[string][]wallet.Event
	calls   []call
	now     time.Time

	// fail, when set, answers every call instead of the wallets.
	fail error
	// hold, when set, makes each call wait for it to close (or for the
	// call's context to end, answering ctx.Err()); entered is signalled first.
	hold    chan struct{}
	entered chan struct{}
}

// call is one recorded call and what its context looked like on arrival.
type call struct {
	Method      string
	PlayerID    string
	Currency    string
	Cmd         wallet.Command
	Before      uint64
	Limit       int
	CtxErr      error // at arrival
	LateCtxErr  error // after hold, when holding
	HasDeadline bool
	RequestID   string
}

var _ actors.Wallets = (*fakeWallets)(nil)

func newFakeWallets() *fakeWallets {
	return &fakeWallets{
		wallets: make(map[string]*wallet.State),
		journal: make(map[string][]wallet.Event),
		now:     time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func (f *fakeWallets) begin(ctx context.Context, c call) (int, error) {
	_, dl := ctx.Deadline()
	c.CtxErr, c.HasDeadline, c.RequestID = ctx.Err(), dl, requestid.FromContext(ctx)
	f.mu.Lock()
	f.calls = append(f.calls, c)
	i, fail, hold, entered := len(f.calls)-1, f.fail, f.hold, f.entered
	f.mu.Unlock()
	if hold != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		select {
		case <-hold:
		case <-ctx.Done():
			f.mu.Lock()
			f.calls[i].LateCtxErr = ctx.Err()
			f.mu.Unlock()
			return i, ctx.Err()
		}
		f.mu.Lock()
		f.calls[i].LateCtxErr = ctx.Err()
		f.mu.Unlock()
	}
	return i, fail
}

func (f *fakeWallets) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeWallets) lastCall() (call, bool) {
	cs := f.Calls()
	if len(cs) == 0 {
		return call{}, false
	}
	return cs[len(cs)-1], true
}

func (f *fakeWallets) view(id string, s *wallet.State) actors.View {
	return actors.View{PlayerID: id, Currency: s.Currency(), Balance: s.Balance(), Version: s.Version()}
}

func (f *fakeWallets) Open(ctx context.Context, playerID string, c wallet.Currency) (actors.View, bool, error) {
	if _, err := f.begin(ctx, call{Method: "Open", PlayerID: playerID, Currency: c.Code}); err != nil {
		return actors.View{}, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.wallets[playerID]; ok {
		if s.Currency() != c {
			return actors.View{}, false, wallet.Errorf(wallet.CodeCurrencyMismatch, "wallet %s holds %s", playerID, s.Currency().Code)
		}
		return f.view(playerID, s), false, nil
	}
	s := wallet.New(c, wallet.DefaultLimits)
	f.wallets[playerID] = s
	return f.view(playerID, s), true, nil
}

func (f *fakeWallets) Get(ctx context.Context, playerID string) (actors.View, error) {
	if _, err := f.begin(ctx, call{Method: "Get", PlayerID: playerID}); err != nil {
		return actors.View{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.wallets[playerID]
	if !ok {
		return actors.View{}, wallet.Errorf(wallet.CodeWalletNotFound, "no wallet %s", playerID)
	}
	return f.view(playerID, s), nil
}

func (f *fakeWallets) Apply(ctx context.Context, playerID string, cmd wallet.Command) (wallet.Result, error) {
	if _, err := f.begin(ctx, call{Method: "Apply", PlayerID: playerID, Cmd: cmd}); err != nil {
		return wallet.Result{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.wallets[playerID]
	if !ok {
		return wallet.Result{}, wallet.Errorf(wallet.CodeWalletNotFound, "no wallet %s", playerID)
	}
	f.now = f.now.Add(time.Millisecond)
	res, ev, err := s.Apply(cmd, f.now)
	var nl *wallet.NeedLookup
	if errors.As(err, &nl) {
		return wallet.Result{}, errors.New("fake: lookups are not supported")
	}
	if err != nil {
		return wallet.Result{}, err
	}
	if ev != nil {
		f.journal[playerID] = append(f.journal[playerID], *ev)
	}
	return res, nil
}

func (f *fakeWallets) History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error) {
	if _, err := f.begin(ctx, call{Method: "History", PlayerID: playerID, Before: before, Limit: limit}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.wallets[playerID]; !ok {
		return nil, wallet.Errorf(wallet.CodeWalletNotFound, "no wallet %s", playerID)
	}
	j := f.journal[playerID]
	var out []wallet.Event
	for i := len(j) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || j[i].Seq < before {
			out = append(out, j[i])
		}
	}
	return out, nil
}
