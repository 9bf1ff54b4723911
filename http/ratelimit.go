package http

import (
	"net/http"
	"net/netip"
	"strings"
)

// gameplay applies the gameplay rate policy (per player) to a handler that
// takes a player's money: bets and withdrawals. Deposits are an operator's
// cash-in and wins and rollbacks settle money already owed, so those routes
// are never wrapped. The check comes before the body is read, so a flood
// costs a path parse and one limiter decision per request.
//
// Over the limit: 429 RATE_LIMITED with Retry-After in whole seconds
// (writeError reads the error's RetryAfter). A limiter that cannot decide
// and is configured to fail closed: 503 UNAVAILABLE with Retry-After: 1.
func (s *Server) gameplay(next http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Limiter == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathPlayer(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.cfg.Limiter.CheckGameplay(r.Context(), id); err != nil {
			s.writeError(w, r, err)
			return
		}
		next(w, r)
	}
}

// ClientIP returns the address of the client that sent r, for per-address
// rate limits (ratelimit.Limiter.CheckAuth) and logs.
//
// It is the connection's peer (RemoteAddr). X-Forwarded-For is believed
// only when that peer is one of the server's Config.TrustedProxies: the
// header is then read from the right, each trusted proxy vouching for the
// hop before it, and the first address that is not a trusted proxy is the
// client. Anything to its left was written by the client itself and could
// be anything, so it is never used. An unparsable hop ends the walk at the
// last address vouched for.
//
// Inside a request served by a Server it honours that server's
// TrustedProxies; elsewhere it returns the peer. A peer that is not an
// address (a Unix socket's "@") is returned as is.
func ClientIP(r *http.Request) string {
	var trusted []netip.Prefix
	if info := infoFrom(r.Context()); info != nil {
		trusted = info.proxies
	}
	return clientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted)
}

func clientIP(remote string, xff []string, trusted []netip.Prefix) string {
	peer, ok := parseHop(remote)
	if !ok {
		return clip(remote, 64)
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, ok := parseHop(strings.TrimSpace(hops[j]))
			if !ok {
				return client.String()
			}
			client = hop
			if !isTrusted(hop, trusted) {
				return hop.String()
			}
		}
	}
	return client.String() // every hop a trusted proxy: the leftmost
}

// parseHop parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port", without zone,
// IPv4-mapped IPv6 as IPv4.
func parseHop(s string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if b, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		a = b
	} else {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
