package ldapdir

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-ldap/ldap/v3"
)

// Searcher is the part of an LDAP connection the reader uses; Open's
// connection (wire.go) and *ldap.Conn implement it, and unit tests pass
// fakes (e.g. for Active Directory's ranged retrieval, which slapd cannot
// serve).
type Searcher interface {
	Search(req *ldap.SearchRequest) (*ldap.SearchResult, error)
}

// Op names the LDAP operation that failed, for metrics.
type Op string

// Operations.
const (
	OpConnect Op = "connect"
	OpBind    Op = "bind"
	OpSearch  Op = "search"
)

// Error is an LDAP failure with the operation that failed.
type Error struct {
	Op  Op
	Err error
}

func (e *Error) Error() string { return string(e.Op) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// OpOf returns the operation of an LDAP error ("" if err is not one).
func OpOf(err error) Op {
	var e *Error
	if errors.As(err, &e) {
		return e.Op
	}
	return ""
}

// Session is one open, bound connection. Close it when done.
type Session struct {
	cfg   *Config
	s     Searcher
	close func() error
	// requests counts LDAP requests (each page is one).
	requests atomic.Int64
	// openPeer opens a second session for concurrent full reads (nil: none).
	openPeer func() (*Session, error)
}

// NewSession wraps a Searcher (tests; Open for a real server).
func NewSession(cfg *Config, s Searcher) *Session {
	return &Session{cfg: cfg, s: s, close: func() error { return nil }}
}

// Requests returns how many LDAP search requests (round trips) were made.
func (s *Session) Requests() int64 { return s.requests.Load() }

// Close closes the connection.
func (s *Session) Close() error { return s.close() }

// TLSConfig returns the TLS configuration for ldaps and StartTLS.
func (c *Config) TLSConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in flag
	if u, err := url.Parse(c.URL); err == nil {
		tc.ServerName = u.Hostname()
	}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" || c.CAPEM != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read LDAP CA file: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("LDAP CA file %s holds no PEM certificate", c.CAFile)
			}
		}
		if c.CAPEM != "" && !pool.AppendCertsFromPEM([]byte(c.CAPEM)) {
			return nil, errors.New("the LDAP CA certificate contents hold no PEM certificate")
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Open connects (ldap://, ldaps:// or StartTLS), binds and returns a
// session. The connection is closed on any error, and when ctx is done.
func Open(ctx context.Context, cfg *Config) (*Session, error) {
	tc, err := cfg.TLSConfig()
	if err != nil {
		return nil, &Error{Op: OpConnect, Err: err}
	}
	conn, err := dialWire(ctx, cfg, tc)
	if err != nil {
		return nil, &Error{Op: OpConnect, Err: err}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	closeConn := func() error {
		stop()
		return conn.Close()
	}
	if err := conn.bind(cfg.BindDN, cfg.BindPassword); err != nil {
		_ = closeConn()
		if cfg.BindDN == "" {
			return nil, &Error{Op: OpBind, Err: fmt.Errorf("anonymous bind to %s: %w", cfg.URL, err)}
		}
		return nil, &Error{Op: OpBind, Err: fmt.Errorf("bind as %q to %s: %w", cfg.BindDN, cfg.URL, err)}
	}
	return &Session{cfg: cfg, s: conn, close: closeConn}, nil
}

// search runs one search, paged when configured, completes ranged
// attributes named in ranged and hands each entry to each, page by page, so
// that raw entries do not outlive their page.
func (s *Session) search(ctx context.Context, base string, scope int, filter string, attrs []string, ranged []string, each func(*ldap.Entry)) error {
	req := ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, int(s.cfg.Timeout.Seconds()), false, filter, attrs, nil)
	var paging *ldap.ControlPaging
	if s.cfg.Paged && scope != ldap.ScopeBaseObject {
		paging = ldap.NewControlPaging(s.cfg.PageSize)
		req.Controls = []ldap.Control{paging}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.requests.Add(1)
		res, err := s.s.Search(req)
		if err != nil {
			if scope == ldap.ScopeBaseObject && ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				return nil
			}
			return &Error{Op: OpSearch, Err: fmt.Errorf("search %q under %q: %w", filter, base, err)}
		}
		for _, e := range res.Entries {
			for _, a := range ranged {
				if err := s.completeRange(ctx, e, a); err != nil {
					return err
				}
			}
			each(e)
		}
		if paging == nil {
			break
		}
		c, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if c == nil || len(c.Cookie) == 0 {
			break
		}
		paging.SetCookie(c.Cookie)
	}
	return nil
}

// completeRange handles Active Directory's ranged retrieval: a large
// attribute comes back as "member;range=0-1499" and the rest must be fetched
// with further base searches for "member;range=1500-*" until the server
// answers with an end of "*". The values are merged into the plain attribute.
func (s *Session) completeRange(ctx context.Context, e *ldap.Entry, attr string) error {
	var values []string
	next := -1
	found := false
	keep := e.Attributes[:0]
	for _, a := range e.Attributes {
		if _, hi, ok := parseRange(a.Name, attr); ok {
			found = true
			values = append(values, a.Values...)
			next = hi
			continue
		}
		keep = append(keep, a)
	}
	if !found {
		return nil
	}
	e.Attributes = keep
	for guard := 0; next >= 0; guard++ {
		if guard > 100000 {
			return &Error{Op: OpSearch, Err: fmt.Errorf("ranged retrieval of %s on %q did not end", attr, e.DN)}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		want := fmt.Sprintf("%s;range=%d-*", attr, next+1)
		req := ldap.NewSearchRequest(e.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, int(s.cfg.Timeout.Seconds()), false,
			"(objectClass=*)", []string{want}, nil)
		s.requests.Add(1)
		res, err := s.s.Search(req)
		if err != nil {
			return &Error{Op: OpSearch, Err: fmt.Errorf("ranged retrieval %s on %q: %w", want, e.DN, err)}
		}
		next = -1
		progressed := false
		for _, r := range res.Entries {
			for _, a := range r.Attributes {
				if _, hi, ok := parseRange(a.Name, attr); ok {
					values = append(values, a.Values...)
					next = hi
					progressed = true
				}
			}
		}
		if !progressed {
			return &Error{Op: OpSearch, Err: fmt.Errorf("ranged retrieval %s on %q returned no range", want, e.DN)}
		}
	}
	e.Attributes = append(e.Attributes, ldap.NewEntryAttribute(attr, values))
	return nil
}

// parseRange parses "member;range=0-1499" (hi is -1 for "*").
func parseRange(name, attr string) (lo, hi int, ok bool) {
	prefix := strings.ToLower(attr) + ";range="
	if !strings.HasPrefix(strings.ToLower(name), prefix) {
		return 0, 0, false
	}
	l, h, ok := strings.Cut(name[len(prefix):], "-")
	if !ok {
		return 0, 0, false
	}
	lo, err := strconv.Atoi(l)
	if err != nil {
		return 0, 0, false
	}
	if h == "*" {
		return lo, -1, true
	}
	hi, err = strconv.Atoi(h)
	if err != nil || hi < lo {
		return 0, 0, false
	}
	return lo, hi, true
}
