package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// AdminClient calls a POP's purge and warm endpoints (used by the cdn-warm
// and cdn-purge functions and the admin CLI).
type AdminClient struct {
	HTTP   *http.Client // default: 2-minute timeout
	Secret string       // the POPs' admin secret
}

func (c AdminClient) post(ctx context.Context, popURL, path string, in, out any) (int, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(popURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("%s request: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(AdminSecretHeader, c.Secret)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s%s: %w", popURL, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusMultiStatus {
		return resp.StatusCode, fmt.Errorf("POST %s%s: status %d: %s", popURL, path, resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("POST %s%s: decode: %w", popURL, path, err)
	}
	return resp.StatusCode, nil
}

// Purge asks the POP at popURL to drop objects.
func (c AdminClient) Purge(ctx context.Context, popURL string, req PurgeRequest) (PurgeResult, error) {
	var res PurgeResult
	_, err := c.post(ctx, popURL, "/admin/purge", req, &res)
	return res, err
}

// Warm asks the POP at popURL to pull keys into its cache now.
func (c AdminClient) Warm(ctx context.Context, popURL string, keys []string) (WarmResult, error) {
	var res WarmResult
	_, err := c.post(ctx, popURL, "/admin/warm", WarmRequest{Keys: keys}, &res)
	return res, err
}

// Revoke asks the POP at popURL to refuse tokens issued before now for
// objects under the prefixes, and to drop its cached copies of them.
func (c AdminClient) Revoke(ctx context.Context, popURL string, req RevokeRequest) (RevokeResult, error) {
	var res RevokeResult
	_, err := c.post(ctx, popURL, "/admin/revoke", req, &res)
	return res, err
}
