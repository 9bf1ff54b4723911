// Package bench measures walletd, side by side with the naive row-lock
// wallet (package naive) and a no-op server on walletd's HTTP stack
// (package ceiling), and proves that no money went missing under load.
//
// The load generator drives any server of the generic HTTP API (wallet-api.md):
// virtual users in a closed or an open loop (Workload), a mix of bets, wins,
// rollbacks and retries of the same tx_id (Mix), over one hot wallet, many
// wallets or a Zipf distribution (Skew). Execute runs it, summarises the
// latency with an HDR histogram and then checks every wallet against the
// Ledger of acknowledged transactions. RunProvider does the same in the
// Pragmatic Play and Evolution wire formats by playing providers/sim.
// RunSuite is `make bench`: every system and scenario in one invocation,
// each server in its own process, reported as Markdown, JSON and SVG
// (Report). DropEvery is a deliberately broken server that the check must
// catch.
//
// The Go benchmark BenchmarkPostgresVsNaive compares the engine and the
// naive wallet at the library level, without HTTP.
//
// Docs: docs/benchmarks.md.
package bench
