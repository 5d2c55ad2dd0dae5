// Package promactivity asks Prometheus which namespaces ran pods recently,
// from kube-state-metrics' kube_pod_container_info, the way Open OnDemand
// sites' k8-namespace-reaper does, but failing safe: an answer that is not a
// non-empty instant vector is an error, never "every namespace is idle".
package promactivity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// ErrEmpty is returned when Prometheus answers with no series: that means
// kube-state-metrics is not scraped (or the query is wrong), not that every
// namespace is idle.
var ErrEmpty = errors.New("empty result")

// ErrNotVector is returned when the answer is not an instant vector.
var ErrNotVector = errors.New("result is not a vector")

// Options configure the client.
type Options struct {
	// Address is the Prometheus base URL, e.g. http://prometheus:9090.
	Address string
	// Timeout bounds each attempt.
	Timeout time.Duration
	// RetryTimeout bounds all attempts together; 0 means a single attempt.
	RetryTimeout time.Duration
	// RetryInterval is the wait between attempts.
	RetryInterval time.Duration
	// BearerTokenFile, if set, is read at every query (so a rotated token is
	// picked up) and sent as "Authorization: Bearer …".
	BearerTokenFile string
	// CAFile, if set, holds the PEM CA certificates that verify an https address.
	CAFile string
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	u, err := url.Parse(o.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--prometheus-address %q: want an http:// or https:// URL", o.Address))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--prometheus-timeout must be positive, got %v", o.Timeout))
	}
	if o.RetryTimeout < 0 {
		errs = append(errs, fmt.Errorf("--prometheus-retry-timeout must not be negative, got %v", o.RetryTimeout))
	}
	if o.RetryInterval <= 0 {
		errs = append(errs, fmt.Errorf("--prometheus-retry-interval must be positive, got %v", o.RetryInterval))
	}
	return errors.Join(errs...)
}

// Client queries the Prometheus HTTP API.
type Client struct {
	opts  Options
	http  *http.Client
	clock clock.Clock
	log   *zap.Logger
}

// New returns a client. clk times the waits between attempts.
func New(o Options, clk clock.Clock, log *zap.Logger) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read Prometheus CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in the Prometheus CA file %s", o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{opts: o, http: &http.Client{Transport: tr}, clock: clk, log: log}, nil
}

// Query returns the PromQL that finds, for each namespace, the last time a
// container existed within window. namePattern is matched against the whole
// namespace name, as PromQL's =~ does and as the reaper's own name check does
// (it anchors the same pattern); empty means every namespace.
func Query(namePattern string, window time.Duration) string {
	sel := "kube_pod_container_info"
	if namePattern != "" {
		// PromQL string literals use Go's escaping rules.
		sel += "{namespace=~" + strconv.Quote(namePattern) + "}"
	}
	return fmt.Sprintf("max(max_over_time(timestamp(%s)[%s:5m])) by (namespace)", sel, model.Duration(window))
}

// Result is a successful answer.
type Result struct {
	// Active maps each namespace in the answer to the last time a container
	// was seen in it.
	Active map[string]time.Time
	// Attempts is the number of HTTP requests made.
	Attempts int
}

// ActiveNamespaces runs query as an instant query, retrying transport
// errors, timeouts and 5xx/429 answers every RetryInterval until
// RetryTimeout has passed. Each attempt has its own Timeout. It returns an
// error, wrapping ErrEmpty or ErrNotVector where they apply, for anything but a
// non-empty vector with namespace labels.
func (c *Client) ActiveNamespaces(ctx context.Context, query string) (Result, error) {
	start := c.clock.Now()
	res := Result{}
	for {
		res.Attempts++
		active, err := c.attempt(ctx, query)
		if err == nil {
			res.Active = active
			return res, nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return res, err
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("query Prometheus %s (%d attempts): %w", c.opts.Address, res.Attempts, err)
		}
		if c.clock.Since(start)+c.opts.RetryInterval > c.opts.RetryTimeout {
			return res, fmt.Errorf("query Prometheus %s: gave up after %d attempts in %v: %w",
				c.opts.Address, res.Attempts, c.clock.Since(start).Round(time.Millisecond), err)
		}
		c.log.Warn("Retrying Prometheus query", zap.Int("attempt", res.Attempts), zap.Error(err))
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("query Prometheus %s (%d attempts): %w", c.opts.Address, res.Attempts, ctx.Err())
		case <-c.clock.After(c.opts.RetryInterval):
		}
	}
}

// permanentError is an answer that retrying will not change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(format string, args ...any) error {
	return &permanentError{err: fmt.Errorf(format, args...)}
}

// apiResponse is the Prometheus HTTP API envelope of an instant query.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (c *Client) attempt(ctx context.Context, query string) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	u := strings.TrimSuffix(c.opts.Address, "/") + "/api/v1/query?" + url.Values{
		"query":   {query},
		"timeout": {model.Duration(c.opts.Timeout).String()},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, permanent("build Prometheus request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.opts.BearerTokenFile != "" {
		tok, err := os.ReadFile(c.opts.BearerTokenFile)
		if err != nil {
			return nil, permanent("read Prometheus bearer token file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query Prometheus: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read Prometheus answer: %w", err)
	}
	var r apiResponse
	jsonErr := json.Unmarshal(body, &r)
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, fmt.Errorf("answer from Prometheus: %s: %s %s", resp.Status, r.ErrorType, r.Error)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, permanent("answer from Prometheus: %s: %s %s", resp.Status, r.ErrorType, r.Error)
	}
	if jsonErr != nil {
		return nil, permanent("decode Prometheus answer: %w", jsonErr)
	}
	if r.Status != "success" {
		return nil, permanent("answer from Prometheus: status %q: %s %s", r.Status, r.ErrorType, r.Error)
	}
	return parseVector(r.Data.ResultType, r.Data.Result)
}

// parseVector reads an instant vector of per-namespace timestamps.
func parseVector(resultType string, raw json.RawMessage) (map[string]time.Time, error) {
	if resultType != "vector" {
		return nil, permanent("%w: got result type %q", ErrNotVector, resultType)
	}
	var samples []sample
	if err := json.Unmarshal(raw, &samples); err != nil {
		return nil, permanent("decode Prometheus vector: %w", err)
	}
	active := map[string]time.Time{}
	for _, s := range samples {
		ns := s.Metric["namespace"]
		if ns == "" {
			continue
		}
		var t time.Time
		if str, ok := s.Value[1].(string); ok {
			if f, err := strconv.ParseFloat(str, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				t = time.Unix(0, int64(f*1e9))
			}
		}
		active[ns] = t
	}
	if len(active) == 0 {
		return nil, permanent("%w: %d series, none with a namespace label", ErrEmpty, len(samples))
	}
	return active, nil
}
