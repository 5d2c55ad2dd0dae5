package kubeclient

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// RequestCounter counts the API requests made through a REST config, by
// method and resource path, for benchmarks and for tests that assert that
// nothing was written.
type RequestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Count wraps cfg's transport so that every request is counted, and returns
// the counter. It returns a copy of cfg.
func Count(cfg *rest.Config) (*rest.Config, *RequestCounter) {
	c := &RequestCounter{counts: map[string]int{}}
	cfg = rest.CopyConfig(cfg)
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			c.add(req)
			return rt.RoundTrip(req)
		})
	}
	return cfg, c
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *RequestCounter) add(req *http.Request) {
	verb := req.Method
	if req.Method == http.MethodGet && req.URL.Query().Get("watch") == "true" {
		verb = "WATCH"
	}
	key := verb + " " + resourceOf(req.URL.Path)
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
}

// resourceOf reduces /api/v1/namespaces/x/pods/y to "pods" (the resource
// type, and "namespaces" for a namespace itself).
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// /api/v1/... or /apis/group/version/...
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return path
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	if len(parts) == 0 {
		return "/"
	}
	return parts[0]
}

// Total returns the number of requests whose method is one of methods (all
// when none are given). Methods: GET, WATCH, POST, PUT, PATCH, DELETE.
func (c *RequestCounter) Total(methods ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.counts {
		verb, _, _ := strings.Cut(k, " ")
		if len(methods) == 0 || contains(methods, verb) {
			n += v
		}
	}
	return n
}

// Writes returns the number of POST, PUT, PATCH and DELETE requests.
func (c *RequestCounter) Writes() int { return c.Total("POST", "PUT", "PATCH", "DELETE") }

// Reset sets every count to zero.
func (c *RequestCounter) Reset() {
	c.mu.Lock()
	c.counts = map[string]int{}
	c.mu.Unlock()
}

// String lists the counts, e.g. "GET pods=1 PATCH configmaps=6".
func (c *RequestCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		verb, res, _ := strings.Cut(k, " ")
		b.WriteString(verb + " " + res + "=" + strconv.Itoa(c.counts[k]))
	}
	return b.String()
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
