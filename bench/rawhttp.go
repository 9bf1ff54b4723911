package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rawClient is a minimal HTTP/1.1 keep-alive client to one host. The load
// generator shares the machine with the server it measures, and net/http's
// client (two goroutines per connection, header maps, a Request and a
// Response per call) costs more CPU per request than a small server does;
// this one costs one Write and usually one Read per request.
type rawClient struct {
	addr    string      // host:port to dial
	host    string      // Host header
	prefix  string      // the base URL's path
	auth    string      // Authorization header
	tlsConf *tls.Config // non-nil for https
	err     error       // a bad base URL or key: every call fails with it

	dialer      net.Dialer
	timeout     time.Duration // per call, when ctx has no earlier deadline
	idleTimeout time.Duration // idle conns older than this are not reused
	maxIdle     int

	mu   sync.Mutex
	idle []*rawConn // a stack: the newest on top, so warm conns are reused
}

// rawConn is one connection and the buffers its calls reuse.
type rawConn struct {
	nc        net.Conn
	br        *bufio.Reader
	wbuf      []byte
	body      []byte
	idleSince time.Time
}

const (
	rawMaxBody     = 64 << 20
	rawDefaultWait = 30 * time.Second
)

// aLongTimeAgo is a deadline that unblocks reads and writes at once.
var aLongTimeAgo = time.Unix(1, 0)

func newRawClient(base, auth string, maxIdle int) *rawClient {
	c := &rawClient{
		auth:        auth,
		dialer:      net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		timeout:     rawDefaultWait,
		idleTimeout: 60 * time.Second, // below walletd's 2 min server IdleTimeout
		maxIdle:     maxIdle,
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		c.err = err
		return c
	case u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "":
		c.err = fmt.Errorf("base URL %q: want http(s)://host[:port][/path]", base)
		return c
	case !validHeaderValue(auth):
		c.err = errors.New("the API key is not a valid header value")
		return c
	}
	c.host, c.prefix = u.Host, strings.TrimRight(u.EscapedPath(), "/")
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	c.addr = net.JoinHostPort(u.Hostname(), port)
	if u.Scheme == "https" {
		c.tlsConf = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	}
	return c
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// validTarget reports whether path can go into the request line as is.
func validTarget(path string) bool {
	if !strings.HasPrefix(path, "/") {
		return false
	}
	for i := 0; i < len(path); i++ {
		if b := path[i]; b <= ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

// do sends one request and passes the reply's status and body to handle;
// the body is valid only during handle. A transport or protocol error
// means the outcome is unknown: the connection is discarded, never reused.
func (c *rawClient) do(ctx context.Context, method, path string, body []byte, handle func(status int, body []byte) error) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if !validTarget(path) {
		return 0, fmt.Errorf("%s %q: not a valid request path", method, path)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	rc, err := c.get(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	dl, ctxDeadline := time.Now().Add(c.timeout), false
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl, ctxDeadline = d, true
	}
	if err := rc.nc.SetDeadline(dl); err != nil {
		rc.nc.Close()
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { rc.nc.SetDeadline(aLongTimeAgo) })
	}
	status, keep, err := c.roundTrip(rc, method, path, body)
	if stop != nil && !stop() {
		keep = false // the AfterFunc ran: the deadline may be in the past
	}
	if err != nil {
		var ne net.Error
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		} else if ctxDeadline && errors.As(err, &ne) && ne.Timeout() {
			// The conn's deadline fired before ctx's timer did.
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
	}
	if err != nil {
		rc.nc.Close()
		return status, fmt.Errorf("%s %s: %w", method, path, err)
	}
	herr := handle(status, rc.body)
	if cap(rc.body) > 1<<20 {
		rc.body = nil // a long history page; do not keep it per conn
	}
	if keep {
		c.put(rc)
	} else {
		rc.nc.Close()
	}
	return status, herr
}

// get pops the newest idle conn or dials a new one.
func (c *rawClient) get(ctx context.Context) (*rawConn, error) {
	var stale []*rawConn
	c.mu.Lock()
	for n := len(c.idle); n > 0; n = len(c.idle) {
		rc := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		if time.Since(rc.idleSince) < c.idleTimeout {
			c.mu.Unlock()
			return rc, nil
		}
		// The newest is stale, so is every older one.
		stale = append(stale, rc)
	}
	c.mu.Unlock()
	for _, rc := range stale {
		rc.nc.Close()
	}
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	if c.tlsConf != nil {
		tc := tls.Client(nc, c.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 8<<10), wbuf: make([]byte, 0, 512)}, nil
}

// put returns a healthy conn to the pool, or closes it when the pool is full.
func (c *rawClient) put(rc *rawConn) {
	rc.idleSince = time.Now()
	c.mu.Lock()
	if len(c.idle) >= c.maxIdle {
		c.mu.Unlock()
		rc.nc.Close()
		return
	}
	c.idle = append(c.idle, rc)
	c.mu.Unlock()
}

// closeIdle closes the idle conns; the client stays usable.
func (c *rawClient) closeIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, rc := range idle {
		rc.nc.Close()
	}
}

// idleCount is the number of pooled conns.
func (c *rawClient) idleCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle)
}

// roundTrip writes the request and reads the whole reply into rc.body.
// keep reports whether the conn may carry another request.
func (c *rawClient) roundTrip(rc *rawConn, method, path string, body []byte) (status int, keep bool, err error) {
	b := append(rc.wbuf[:0], method...)
	b = append(b, ' ')
	b = append(b, c.prefix...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nAuthorization: "...)
	b = append(b, c.auth...)
	if body != nil {
		b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	rc.wbuf = b
	if _, err := rc.nc.Write(b); err != nil {
		return 0, false, err
	}
	status, keep, err = rc.readReply(method == "HEAD")
	if err == nil && rc.br.Buffered() > 0 {
		keep = false // bytes nobody asked for: the stream is out of step
	}
	return status, keep, err
}

var errMalformed = errors.New("malformed HTTP reply")

// readReply reads a status line, headers and the body.
func (rc *rawConn) readReply(head bool) (status int, keep bool, err error) {
	rc.body = rc.body[:0]
	for {
		line, err := rc.readLine()
		if err != nil {
			return 0, false, err
		}
		// "HTTP/1.1 200 OK"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') ||
			line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
			return 0, false, fmt.Errorf("%w: status line %.60q", errMalformed, line)
		}
		http11 := line[7] == '1'
		keep = http11
		status = 0
		for _, d := range line[9:12] {
			if d < '0' || d > '9' {
				return 0, false, fmt.Errorf("%w: status line %.60q", errMalformed, line)
			}
			status = status*10 + int(d-'0')
		}
		if status < 100 {
			return 0, false, fmt.Errorf("%w: status line %.60q", errMalformed, line)
		}
		length, chunked := int64(-1), false
		for {
			line, err := rc.readLine()
			if err != nil {
				return status, false, err
			}
			if len(line) == 0 {
				break
			}
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 || line[0] == ' ' || line[0] == '\t' || bytes.ContainsAny(line[:colon], " \t") {
				return status, false, fmt.Errorf("%w: header %.60q", errMalformed, line)
			}
			name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, ok := parseDigits(value)
				if !ok || (length >= 0 && n != length) {
					return status, false, fmt.Errorf("%w: Content-Length %.40q", errMalformed, value)
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				if !bytes.EqualFold(value, []byte("chunked")) {
					return status, false, fmt.Errorf("%w: Transfer-Encoding %.40q", errMalformed, value)
				}
				chunked = true
			case bytes.EqualFold(name, []byte("Connection")):
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					tok = bytes.Trim(tok, " \t")
					if bytes.EqualFold(tok, []byte("close")) {
						keep = false
					} else if bytes.EqualFold(tok, []byte("keep-alive")) && !http11 {
						keep = true
					}
				}
			}
		}
		if status == 101 {
			return status, false, fmt.Errorf("%w: unexpected 101 Switching Protocols", errMalformed)
		}
		if status < 200 {
			continue // informational; the real reply follows
		}
		switch {
		case head || status == 204 || status == 304:
			return status, keep, nil
		case chunked:
			// With a Content-Length too, the framing is suspect: no reuse.
			return status, keep && length < 0, rc.readChunked()
		case length >= 0:
			if length > rawMaxBody {
				return status, false, fmt.Errorf("reply of %d bytes is too long", length)
			}
			rc.body = slices.Grow(rc.body, int(length))[:length]
			if _, err := io.ReadFull(rc.br, rc.body); err != nil {
				return status, false, unexpectedEOF(err)
			}
			return status, keep, nil
		default:
			// No length: the body runs to the end of the connection.
			for {
				if len(rc.body) > rawMaxBody {
					return status, false, errors.New("reply is too long")
				}
				rc.body = slices.Grow(rc.body, 4096)
				n, err := rc.br.Read(rc.body[len(rc.body):cap(rc.body)])
				rc.body = rc.body[:len(rc.body)+n]
				if err == io.EOF {
					return status, false, nil
				}
				if err != nil {
					return status, false, err
				}
			}
		}
	}
}

// readChunked reads a chunked body and its trailer.
func (rc *rawConn) readChunked() error {
	for {
		line, err := rc.readLine()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		line = bytes.TrimRight(line, " \t")
		if len(line) == 0 || len(line) > 8 {
			return fmt.Errorf("%w: chunk size %.40q", errMalformed, line)
		}
		size, err := strconv.ParseUint(string(line), 16, 32)
		if err != nil {
			return fmt.Errorf("%w: chunk size %.40q", errMalformed, line)
		}
		if size == 0 {
			for { // trailer fields, up to an empty line
				line, err := rc.readLine()
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		n := len(rc.body)
		if n+int(size) > rawMaxBody {
			return errors.New("reply is too long")
		}
		rc.body = slices.Grow(rc.body, int(size))[:n+int(size)]
		if _, err := io.ReadFull(rc.br, rc.body[n:]); err != nil {
			return unexpectedEOF(err)
		}
		line, err = rc.readLine()
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
	}
}

// readLine returns one line without its CRLF (or bare LF); it is valid
// until the next read. A line longer than the buffer is an error.
func (rc *rawConn) readLine() ([]byte, error) {
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("%w: line too long", errMalformed)
		}
		return nil, unexpectedEOF(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseDigits parses a non-negative decimal of at most 18 digits.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// unexpectedEOF: an EOF inside a reply is a truncated reply.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
