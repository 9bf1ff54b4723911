package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer runs h and counts the connections it accepted.
func testServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// rawCall calls c and copies the body out.
func rawCall(c *rawClient, ctx context.Context, method, path string, body []byte) (int, string, error) {
	var got string
	status, err := c.do(ctx, method, path, body, func(_ int, b []byte) error {
		got = string(b)
		return nil
	})
	return status, got, err
}

// hijack answers with raw bytes, then closes the connection.
func hijack(raw string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		bw.WriteString(raw)
		bw.Flush()
		conn.Close()
	}
}

func TestRawClientReplies(t *testing.T) {
	big := strings.Repeat(`{"seq":1,"tx_id":"abcdefgh"},`, 2000) // ~58 KB
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		method  string
		body    string
		status  int
		want    string
		reused  bool   // the conn went back to the pool
		wantErr string // a transport error containing this
		once    bool   // the server closes the conn after it: one call only
	}{
		{name: "content-length", method: "POST", body: `{"a":1}`, status: 200, want: `{"ok":true}`, reused: true,
			h: func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Content-Type") != "application/json" ||
					r.ContentLength != 7 || string(b) != `{"a":1}` || r.URL.RequestURI() != "/p?q=1" {
					w.WriteHeader(400)
					return
				}
				w.Header().Set("Content-Length", "11")
				io.WriteString(w, `{"ok":true}`)
			}},
		{name: "get without body", method: "GET", status: 200, want: "{}", reused: true,
			h: func(w http.ResponseWriter, r *http.Request) {
				if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" || r.Host == "" {
					w.WriteHeader(400)
					return
				}
				io.WriteString(w, "{}")
			}},
		{name: "chunked large", method: "GET", status: 200, want: big, reused: true,
			h: func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < len(big); i += 3000 {
					io.WriteString(w, big[i:min(i+3000, len(big))])
				}
			}},
		{name: "chunked with flushes", method: "GET", status: 200, want: "part one,part two,", reused: true,
			h: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "part one,")
				w.(http.Flusher).Flush()
				time.Sleep(10 * time.Millisecond)
				io.WriteString(w, "part two,")
				w.(http.Flusher).Flush()
			}},
		{name: "connection close", method: "GET", status: 200, want: "bye", reused: false,
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, "bye")
			}},
		{name: "4xx with JSON", method: "POST", body: "{}", status: 422, want: `{"error":{"code":"INSUFFICIENT_FUNDS","message":"no"}}`, reused: true,
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(422)
				io.WriteString(w, `{"error":{"code":"INSUFFICIENT_FUNDS","message":"no"}}`)
			}},
		{name: "204", method: "POST", body: "{}", status: 204, want: "", reused: true,
			h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }},
		{name: "no length, body to EOF", method: "GET", status: 200, want: "all of it", reused: false, once: true,
			h: hijack("HTTP/1.1 200 OK\r\n\r\nall of it")},
		{name: "mixed-case headers, trailer", method: "GET", status: 200, want: "abcdef", reused: true, once: true,
			h: hijack("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\n3\r\ndef\r\n0\r\nX-T: 1\r\n\r\n")},
		{name: "chunked and a length", method: "GET", status: 200, want: "abc", reused: false, once: true,
			h: hijack("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")},
		{name: "closed mid-body", method: "GET", wantErr: "unexpected EOF",
			h: hijack("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial")},
		{name: "closed mid-chunk", method: "GET", wantErr: "unexpected EOF",
			h: hijack("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc")},
		{name: "closed in headers", method: "GET", wantErr: "unexpected EOF",
			h: hijack("HTTP/1.1 200 OK\r\nContent-Le")},
		{name: "closed before reply", method: "POST", body: "{}", wantErr: "unexpected EOF",
			h: hijack("")},
		{name: "garbage status line", method: "GET", wantErr: "malformed",
			h: hijack("HTTP/1.1 2x0 OK\r\n\r\n")},
		{name: "conflicting lengths", method: "GET", wantErr: "malformed",
			h: hijack("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")},
		{name: "bad chunk size", method: "GET", wantErr: "malformed",
			h: hijack("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")},
		{name: "unknown transfer coding", method: "GET", wantErr: "malformed",
			h: hijack("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, conns := testServer(t, tc.h)
			c := newRawClient(srv.URL, "Bearer k", 4)
			defer c.closeIdle()
			var body []byte
			if tc.method == "POST" {
				body = []byte(tc.body)
			}
			calls := 3 // again on the same conn, or on a new one
			if tc.once {
				calls = 1
			}
			for i := range calls {
				status, got, err := rawCall(c, context.Background(), tc.method, "/p?q=1", body)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("call %d: err %v, want %q", i, err, tc.wantErr)
					}
					if n := c.idleCount(); n != 0 {
						t.Fatalf("call %d: %d pooled conns after an error", i, n)
					}
					continue
				}
				if err != nil || status != tc.status || got != tc.want {
					t.Fatalf("call %d: %d %.80q %v, want %d %.80q", i, status, got, err, tc.status, tc.want)
				}
				if n := c.idleCount(); n != map[bool]int{true: 1, false: 0}[tc.reused] {
					t.Fatalf("call %d: %d pooled conns, reused=%v", i, n, tc.reused)
				}
			}
			want := int64(calls)
			if tc.reused {
				want = 1
			}
			if n := conns.Load(); n != want {
				t.Errorf("%d connections for %d calls, want %d", n, calls, want)
			}
		})
	}
}

// A hanging server: the call returns soon after ctx ends or the default
// timeout passes, with an error, and the conn is not pooled.
func TestRawClientHangs(t *testing.T) {
	release := make(chan struct{})
	srv, _ := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		timeout time.Duration
		want    error
	}{
		{"ctx deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, 0, context.DeadlineExceeded},
		{"ctx cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, 0, context.Canceled},
		{"default timeout", func() (context.Context, context.CancelFunc) {
			return context.Background(), func() {}
		}, 100 * time.Millisecond, nil},
		{"already cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, 0, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRawClient(srv.URL, "Bearer k", 4)
			if tc.timeout > 0 {
				c.timeout = tc.timeout
			}
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, _, err := rawCall(c, ctx, "POST", "/hang", []byte("{}"))
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("returned after %v", took)
			}
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			var ne net.Error
			if tc.want == nil && (!errors.As(err, &ne) || !ne.Timeout()) {
				t.Errorf("err %v, want a timeout", err)
			}
			if n := c.idleCount(); n != 0 {
				t.Errorf("%d pooled conns", n)
			}
		})
	}
}

// A pool holds at most maxIdle conns; Close closes them and the client
// still works.
func TestRawClientPool(t *testing.T) {
	release := make(chan struct{})
	var inside sync.WaitGroup
	srv, conns := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			inside.Done()
			<-release
		}
		io.WriteString(w, "ok")
	})
	c := newRawClient(srv.URL, "Bearer k", 2)
	const n = 5
	inside.Add(n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, got, err := rawCall(c, context.Background(), "GET", "/wait", nil); err != nil || got != "ok" {
				t.Errorf("%q %v", got, err)
			}
		})
	}
	inside.Wait() // n conns busy at once
	close(release)
	wg.Wait()
	if got := c.idleCount(); got != 2 {
		t.Errorf("%d idle conns, want 2", got)
	}
	c.closeIdle()
	if got := c.idleCount(); got != 0 {
		t.Errorf("%d idle conns after close", got)
	}
	if _, got, err := rawCall(c, context.Background(), "GET", "/", nil); err != nil || got != "ok" {
		t.Errorf("after close: %q %v", got, err)
	}
	if got := conns.Load(); got != n+1 {
		t.Errorf("%d connections, want %d", got, n+1)
	}

	// A conn idle for longer than idleTimeout is not reused.
	c.idleTimeout = time.Nanosecond
	time.Sleep(time.Millisecond)
	if _, _, err := rawCall(c, context.Background(), "GET", "/", nil); err != nil {
		t.Fatal(err)
	}
	if got := conns.Load(); got != n+2 {
		t.Errorf("%d connections, want %d", got, n+2)
	}
}

func TestRawClientTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	defer srv.Close()
	c := newRawClient(srv.URL, "Bearer k", 2)
	c.tlsConf.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for range 2 {
		if _, got, err := rawCall(c, context.Background(), "GET", "/", nil); err != nil || got != "HTTP/1.1" {
			t.Fatalf("%q %v", got, err)
		}
	}
	if n := c.idleCount(); n != 1 {
		t.Errorf("%d idle conns", n)
	}
}

func TestRawClientBadInput(t *testing.T) {
	srv, _ := testServer(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct{ base, auth, path string }{
		{"ftp://x", "Bearer k", "/"},
		{"http://", "Bearer k", "/"},
		{srv.URL, "Bearer k\r\nX-Evil: 1", "/"},
		{srv.URL, "Bearer k", "/a b"},
		{srv.URL, "Bearer k", "/a\nb"},
		{srv.URL, "Bearer k", "noslash"},
	} {
		c := newRawClient(tc.base, tc.auth, 2)
		if _, _, err := rawCall(c, context.Background(), "GET", tc.path, nil); err == nil {
			t.Errorf("%q %q %q: no error", tc.base, tc.auth, tc.path)
		}
	}
}

// moneyServer echoes a money request as walletd would answer it: the
// balance is the amount, the version the tx_id's number. Some replies are
// chunked, some close the connection, some are refusals.
func moneyServer(t *testing.T) *httptest.Server {
	srv, _ := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"UNAUTHORIZED","message":"key"}}`)
			return
		}
		var req struct {
			TxID   string `json:"tx_id"`
			Amount string `json:"amount"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(400)
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(req.TxID, "tx-"))
		kind := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		if kind == "rollback" {
			w.WriteHeader(409)
			fmt.Fprintf(w, `{"error":{"message":"m \"%d\"","code":"BET_NOT_FOUND"}}`, n)
			return
		}
		reply := fmt.Sprintf(`{"tx_id":%q,"kind":%q,"amount":%q,"balance":%q,"version":%d,"duplicate":%v}`, req.TxID, kind, req.Amount, req.Amount, n, n%2 == 0)
		switch n % 7 {
		case 0:
			w.Header().Set("Connection", "close")
		case 1:
			w.(http.Flusher).Flush() // chunked
		default:
			w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
		}
		io.WriteString(w, reply)
	})
	return srv
}

// 50 goroutines share one client: every reply matches its own request.
func TestClientConcurrent(t *testing.T) {
	srv := moneyServer(t)
	c := NewClient(srv.URL, testKey, 50)
	defer c.Close()
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for i := range 100 {
				n := g*1000 + i
				op := Op{Wallet: "w" + strconv.Itoa(g), Kind: KindBet, TxID: "tx-" + strconv.Itoa(n), RoundID: "r", Amount: int64(n)}
				if i%10 == 9 {
					op.Kind, op.Ref = KindRollback, "x"
				}
				rep, err := c.Do(context.Background(), op)
				switch {
				case err != nil:
					t.Errorf("%s: %v", op.TxID, err)
					return
				case op.Kind == KindRollback:
					if rep.Status != 409 || rep.Code != "BET_NOT_FOUND" || rep.OK() {
						t.Errorf("%s: %+v", op.TxID, rep)
					}
				case !rep.OK() || rep.Balance != int64(n) || rep.Version != uint64(n) || rep.Duplicate != (n%2 == 0) || !rep.HasBalance:
					t.Errorf("%s: %+v", op.TxID, rep)
				}
			}
		})
	}
	wg.Wait()
	if n := c.raw.idleCount(); n > 100 || n == 0 {
		t.Errorf("%d idle conns", n)
	}
	// A wrong key: a refusal, not an error.
	bad := NewClient(srv.URL, "nope", 1)
	if rep, err := bad.Do(context.Background(), Op{Wallet: "w", Kind: KindBet, TxID: "tx-1", RoundID: "r", Amount: 1}); err != nil || rep.Status != 401 || rep.Code != "UNAUTHORIZED" {
		t.Errorf("wrong key: %+v %v", rep, err)
	}
}

// Do reports an unreadable reply as an error with the reply's status.
func TestClientUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		status      int
		wantErr     bool
		want        Reply
	}{
		{"ok", `{"balance":"1.50","version":3}`, 200, false, Reply{Status: 200, Balance: 150, HasBalance: true, Version: 3, HasVersion: true}},
		{"refusal", `{"error":{"code":"TX_CONFLICT"}}`, 409, false, Reply{Status: 409, Code: "TX_CONFLICT"}},
		{"not json", `<html>bad gateway</html>`, 502, true, Reply{Status: 502}},
		{"empty 503", ``, 503, true, Reply{Status: 503}},
		{"truncated", `{"balance":"1.50"`, 200, true, Reply{Status: 200}},
		{"bad balance", `{"balance":"1.505","version":3}`, 200, true, Reply{Status: 200}},
		{"no code", `{}`, 500, false, Reply{Status: 500, Code: "HTTP_500"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := testServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.reply)
			})
			c := NewClient(srv.URL, testKey, 1)
			rep, err := c.Do(context.Background(), Op{Wallet: "w", Kind: KindWin, TxID: "t", Amount: 1})
			if (err != nil) != tc.wantErr || (!tc.wantErr && rep != tc.want) || rep.Status != tc.want.Status {
				t.Errorf("%+v %v, want %+v (err %v)", rep, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestScanMoneyReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		scan bool // the scanner reads it itself
		want moneyReply
	}{
		{`{"tx_id":"t1","player_id":"p","kind":"bet","amount":"1.00","balance":"99.00","version":5,"duplicate":false}` + "\n", true,
			moneyReply{Balance: "99.00", Version: 5}},
		{`{"duplicate":true,"version":18446744073709551615,"balance":"-0.01","kind":"win"}`, true,
			moneyReply{Balance: "-0.01", Version: 18446744073709551615, Duplicate: true}},
		{" \t\r\n{ \"balance\" : \"1\" , \"x\" : [ 1 , -2.5e+3 , {\"a\":[]} , null , true , \"\\u00e9\\n\" ] } \n", true,
			moneyReply{Balance: "1"}},
		{`{"error":{"message":"say \"hi\" \\ \/ \u20ac","code":"INSUFFICIENT_FUNDS","details":{"need":"5.00"}}}`, true,
			moneyReply{Error: struct {
				Code string `json:"code"`
			}{"INSUFFICIENT_FUNDS"}}},
		{`{"balance":"1","balance":"2"}`, true, moneyReply{Balance: "2"}},
		{`{}`, true, moneyReply{}},
		// Left to encoding/json, which reads them.
		{`{"bal\u0061nce":"3"}`, false, moneyReply{Balance: "3"}},
		{`{"balance":"\u0031"}`, false, moneyReply{Balance: "1"}},
		{`{"Balance":"4","VERSION":2}`, false, moneyReply{Balance: "4", Version: 2}},
		{`{"error":{"Code":"X"}}`, false, moneyReply{Error: struct {
			Code string `json:"code"`
		}{"X"}}},
		{`{"balance":null,"error":null}`, false, moneyReply{}},
		{`null`, false, moneyReply{}},
		// Malformed or mistyped: both refuse.
		{``, false, moneyReply{}},
		{`{`, false, moneyReply{}},
		{`{"balance":"1",}`, false, moneyReply{}},
		{`{"balance":"1"} x`, false, moneyReply{}},
		{`{"balance":"1"}{}`, false, moneyReply{}},
		{`{"balance":"1}`, false, moneyReply{}},
		{`{"balance":1}`, false, moneyReply{}},
		{`{"version":"1"}`, false, moneyReply{}},
		{`{"version":1.5}`, false, moneyReply{}},
		{`{"version":-1}`, false, moneyReply{}},
		{`{"version":01}`, false, moneyReply{}},
		{`{"version":18446744073709551616}`, false, moneyReply{}},
		{`{"duplicate":"true"}`, false, moneyReply{}},
		{`{"duplicate":tru}`, false, moneyReply{}},
		{`{"error":"X"}`, false, moneyReply{}},
		{`{"x":"bad \q escape"}`, false, moneyReply{}},
		{`{"x":"\u12"}`, false, moneyReply{}},
		{"{\"x\":\"raw \n newline\"}", false, moneyReply{}},
		{`{"x":[1,]}`, false, moneyReply{}},
		{`{"x":1.}`, false, moneyReply{}},
		{`{"x":.5}`, false, moneyReply{}},
		{`{"x":+1}`, false, moneyReply{}},
		{`{"x" 1}`, false, moneyReply{}},
		{`{'x':1}`, false, moneyReply{}},
		{`{"x":nul}`, false, moneyReply{}},
		{`{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, false, moneyReply{}},
	} {
		var got moneyReply
		scanned := scanMoneyReply([]byte(tc.in), &got)
		if scanned != tc.scan || (scanned && got != tc.want) {
			t.Errorf("scan %q = %v %+v, want %v %+v", tc.in, scanned, got, tc.scan, tc.want)
		}
		// decodeReply, scanner or not, agrees with encoding/json.
		var viaJSON, viaDecode moneyReply
		jerr := json.Unmarshal([]byte(tc.in), &viaJSON)
		derr := decodeReply("POST", "w", KindBet, 200, []byte(tc.in), &viaDecode)
		if (jerr == nil) != (derr == nil) || (jerr == nil && viaDecode != viaJSON) || (derr == nil && viaDecode != tc.want) {
			t.Errorf("decode %q = %+v %v; encoding/json %+v %v", tc.in, viaDecode, derr, viaJSON, jerr)
		}
	}
}

// Whatever the scanner accepts, encoding/json reads the same way.
func FuzzScanMoneyReply(f *testing.F) {
	for _, s := range []string{
		`{"tx_id":"t1","amount":"1.00","balance":"99.00","version":5,"duplicate":false}`,
		`{"error":{"code":"X","message":"a\"b"}}`,
		`{"x":[1,-2.5e3,{"a":null}],"balance":"1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var scanned, viaJSON moneyReply
		if !scanMoneyReply(data, &scanned) {
			return
		}
		if err := json.Unmarshal(data, &viaJSON); err != nil || viaJSON != scanned {
			t.Fatalf("%q: scanner %+v, encoding/json %+v %v", data, scanned, viaJSON, err)
		}
	})
}

var benchReply = []byte(`{"tx_id":"wb-abc-tx-123456","player_id":"wb-abc-000042","kind":"bet","amount":"1.00","balance":"998877.00","version":123456,"duplicate":false}` + "\n")

func BenchmarkMoneyReply(b *testing.B) {
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out moneyReply
			if !scanMoneyReply(benchReply, &out) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out moneyReply
			if err := json.Unmarshal(benchReply, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
