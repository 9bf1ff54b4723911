package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client speaks HTTP to walletd.
type client struct {
	base string
	key  string
	hc   *http.Client
}

// attempts bounds the sends of one request when the transport fails
// (every request of the simulator is safe to resend: that is the point).
const attempts = 3

// do sends one request and returns the status and body.
func (c *client) do(ctx context.Context, method, path, contentType string, body []byte, operator bool) (int, []byte, error) {
	var lastErr error
	for i := range attempts {
		if i > 0 {
			time.Sleep(time.Duration(i) * 50 * time.Millisecond)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if operator {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return resp.StatusCode, b, nil
	}
	return 0, nil, lastErr
}

// api sends an operator request with a JSON body and decodes the reply
// into out (when the status is want).
func (c *client) api(ctx context.Context, method, path string, in any, want int, out any) error {
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	status, b, err := c.do(ctx, method, path, "application/json", body, true)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status != want {
		return fmt.Errorf("%s %s: HTTP %d %s", method, path, status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: reply %s: %w", method, path, b, err)
		}
	}
	return nil
}

// preflight checks that walletd answers and takes the operator key, so a
// misconfigured run stops at once instead of counting failures.
func (c *client) preflight(ctx context.Context) error {
	status, b, err := c.do(ctx, http.MethodGet, "/healthz", "", nil, false)
	if err != nil {
		return fmt.Errorf("sim: walletd at %s does not answer: %w", c.base, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("sim: %s/healthz: HTTP %d %s", c.base, status, b)
	}
	status, b, err = c.do(ctx, http.MethodGet, "/v1/wallets/sim-preflight", "", nil, true)
	if err != nil {
		return fmt.Errorf("sim: walletd at %s: %w", c.base, err)
	}
	if status == http.StatusUnauthorized {
		return fmt.Errorf("sim: walletd refuses the operator key: %s", strings.TrimSpace(string(b)))
	}
	return nil
}

func walletPath(id string, rest ...string) string {
	return "/v1/wallets/" + url.PathEscape(id) + strings.Join(rest, "")
}
