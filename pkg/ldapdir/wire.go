package ldapdir

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// wireConn is the LDAP client the reader uses: connect (ldap://, ldaps://,
// StartTLS), simple or anonymous bind, and searches, one request at a time.
// Requests are encoded with go-ldap's BER encoder; responses are decoded
// here, straight from one buffer per message. go-ldap's decoder reads
// every value through io.ReadAll (at least 512 bytes each) and copies it
// into each enclosing packet: a full read of 55,000 entries allocated
// 1.45 GB with it, most of the cold pass's CPU time and memory.
type wireConn struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	msgID   int64
	buf     []byte
	// values interns the values of multi-valued attributes (memberUid,
	// member, memberOf) for the connection's life: 500,000 memberUid values
	// of 50,000 users are 50,000 strings, not 500,000, in the cache kept
	// between passes.
	values map[string]string
}

// maxInterned bounds the intern table; past it, it starts over.
const maxInterned = 1 << 20

// maxMessageBytes bounds one LDAP message from the server.
const maxMessageBytes = 64 << 20

// BER identifiers of the LDAP messages (RFC 4511) read here.
const (
	tagSequence     = 0x30
	tagOctetString  = 0x04
	tagEnumerated   = 0x0a
	tagInteger      = 0x02
	tagSet          = 0x31
	tagControls     = 0xa0
	tagBindResponse = 0x61
	tagSearchEntry  = 0x64
	tagSearchDone   = 0x65
	tagSearchRef    = 0x73
	tagExtendedResp = 0x78
	tagIntermediate = 0x79
	startTLSOID     = "1.3.6.1.4.1.1466.20037"
)

// dialWire connects to cfg.URL (StartTLS when asked), with tc for TLS.
func dialWire(ctx context.Context, cfg *Config, tc *tls.Config) (*wireConn, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", cfg.URL, err)
	}
	port := u.Port()
	ldaps := strings.EqualFold(u.Scheme, "ldaps")
	if port == "" {
		port = "389"
		if ldaps {
			port = "636"
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout}
	var conn net.Conn
	if ldaps {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tc}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.URL, err)
	}
	w := &wireConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), timeout: cfg.ConnectTimeout}
	if cfg.StartTLS {
		if err := w.startTLS(tc); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("StartTLS with %s: %w", cfg.URL, err)
		}
	}
	w.timeout = cfg.Timeout
	return w, nil
}

// Close closes the connection.
func (w *wireConn) Close() error { return w.conn.Close() }

// startTLS upgrades the connection (RFC 4511 4.14).
func (w *wireConn) startTLS(tc *tls.Config) error {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "Start TLS")
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, startTLSOID, "TLS Extended Command"))
	id, err := w.send(op, nil)
	if err != nil {
		return err
	}
	tag, body, _, err := w.receive(id)
	if err != nil {
		return err
	}
	if tag != tagExtendedResp {
		return fmt.Errorf("unexpected response 0x%x to StartTLS", tag)
	}
	if err := resultError(body); err != nil {
		return err
	}
	tlsConn := tls.Client(w.conn, tc)
	if err := tlsConn.SetDeadline(time.Now().Add(w.timeout)); err != nil {
		return err
	}
	if err := tlsConn.Handshake(); err != nil {
		return err
	}
	w.conn, w.r = tlsConn, bufio.NewReaderSize(tlsConn, 64<<10)
	return nil
}

// bind binds simply (both empty: anonymously).
func (w *wireConn) bind(dn, password string) error {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "Bind Request")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "User Name"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, password, "Password"))
	id, err := w.send(op, nil)
	if err != nil {
		return err
	}
	tag, body, _, err := w.receive(id)
	if err != nil {
		return err
	}
	if tag != tagBindResponse {
		return fmt.Errorf("unexpected response 0x%x to a bind", tag)
	}
	return resultError(body)
}

// Search runs one search request (one page when it carries the paging
// control) and returns its entries and the response controls (paging only).
func (w *wireConn) Search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "Search Request")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, req.BaseDN, "Base DN"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.Scope), "Scope"))                //nolint:gosec // small constants
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.DerefAliases), "Deref Aliases")) //nolint:gosec // small constants
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(max(req.SizeLimit, 0)), "Size Limit"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(max(req.TimeLimit, 0)), "Time Limit"))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, req.TypesOnly, "Types Only"))
	filter, err := ldap.CompileFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	op.AppendChild(filter)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	for _, a := range req.Attributes {
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a, "Attribute"))
	}
	op.AppendChild(attrs)
	id, err := w.send(op, req.Controls)
	if err != nil {
		return nil, err
	}
	res := &ldap.SearchResult{}
	// Attribute names repeat in every entry: one string each.
	names := map[string]string{}
	for {
		tag, body, controls, err := w.receive(id)
		if err != nil {
			return nil, err
		}
		switch tag {
		case tagSearchEntry:
			if w.values == nil || len(w.values) > maxInterned {
				w.values = map[string]string{}
			}
			e, err := parseEntry(body, names, w.values)
			if err != nil {
				return nil, err
			}
			res.Entries = append(res.Entries, e)
		case tagSearchRef, tagIntermediate:
			// Referrals are not followed (go-ldap's Search does not either).
		case tagSearchDone:
			if err := resultError(body); err != nil {
				return res, err
			}
			if res.Controls, err = parseControls(controls); err != nil {
				return nil, err
			}
			return res, nil
		default:
			return nil, fmt.Errorf("unexpected response 0x%x to a search", tag)
		}
	}
}

// send writes one request and returns its message ID. The whole exchange,
// the request and every message of its response (a page of a search), must
// end within the timeout.
func (w *wireConn) send(op *ber.Packet, controls []ldap.Control) (int64, error) {
	w.msgID++
	env := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, w.msgID, "MessageID"))
	env.AppendChild(op)
	if len(controls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		for _, c := range controls {
			cs.AppendChild(c.Encode())
		}
		env.AppendChild(cs)
	}
	if err := w.conn.SetDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	if _, err := w.conn.Write(env.Bytes()); err != nil {
		return 0, fmt.Errorf("send request: %w", err)
	}
	return w.msgID, nil
}

// receive reads the next message for id: its protocolOp's identifier and
// contents, and its controls' contents (nil if none). The slices are valid
// until the next receive.
func (w *wireConn) receive(id int64) (tag byte, body, controls []byte, err error) {
	for {
		msg, err := w.readMessage()
		if err != nil {
			return 0, nil, nil, err
		}
		d := decoder{b: msg}
		gotID, err := d.integer()
		if err != nil {
			return 0, nil, nil, err
		}
		tag, body, err = d.next()
		if err != nil {
			return 0, nil, nil, err
		}
		if d.more() {
			var t byte
			if t, controls, err = d.next(); err != nil {
				return 0, nil, nil, err
			}
			if t != tagControls {
				controls = nil
			}
		}
		if gotID == 0 && tag == tagExtendedResp {
			// Notice of disconnection (RFC 4511 4.4.1).
			return 0, nil, nil, fmt.Errorf("the server closed the connection: %w", resultError(body))
		}
		if gotID != id {
			continue // a response to an abandoned request
		}
		return tag, body, controls, nil
	}
}

// readMessage reads one LDAPMessage and returns its contents.
func (w *wireConn) readMessage() ([]byte, error) {
	t, err := w.r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("read LDAP response: %w", err)
	}
	if t != tagSequence {
		return nil, fmt.Errorf("read LDAP response: identifier 0x%x, want a sequence", t)
	}
	n, err := readLength(w.r)
	if err != nil {
		return nil, fmt.Errorf("read LDAP response: %w", err)
	}
	if n > maxMessageBytes {
		return nil, fmt.Errorf("read LDAP response: %d bytes, over the limit of %d", n, maxMessageBytes)
	}
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	w.buf = w.buf[:n]
	if _, err := io.ReadFull(w.r, w.buf); err != nil {
		return nil, fmt.Errorf("read LDAP response: %w", err)
	}
	return w.buf, nil
}

// readLength reads a BER definite length.
func readLength(r io.ByteReader) (int, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	if b < 0x80 {
		return int(b), nil
	}
	k := int(b & 0x7f)
	if k == 0 || k > 4 {
		return 0, fmt.Errorf("unsupported length encoding 0x%x", b)
	}
	n := 0
	for range k {
		if b, err = r.ReadByte(); err != nil {
			return 0, err
		}
		n = n<<8 | int(b)
	}
	return n, nil
}

// decoder walks BER elements in a byte slice.
type decoder struct{ b []byte }

var errTruncated = errors.New("malformed LDAP response: truncated element")

func (d *decoder) more() bool { return len(d.b) > 0 }

// next returns the next element's identifier and contents.
func (d *decoder) next() (byte, []byte, error) {
	if len(d.b) < 2 {
		return 0, nil, errTruncated
	}
	tag := d.b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, fmt.Errorf("malformed LDAP response: multi-byte identifier 0x%x", tag)
	}
	n, i := int(d.b[1]), 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(d.b) < 2+k {
			return 0, nil, fmt.Errorf("malformed LDAP response: length encoding 0x%x", d.b[1])
		}
		n = 0
		for _, c := range d.b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		i += k
	}
	if n < 0 || n > len(d.b)-i {
		return 0, nil, errTruncated
	}
	v := d.b[i : i+n]
	d.b = d.b[i+n:]
	return tag, v, nil
}

// expect returns the next element's contents, which must have identifier tag.
func (d *decoder) expect(tag byte) ([]byte, error) {
	t, v, err := d.next()
	if err != nil {
		return nil, err
	}
	if t != tag {
		return nil, fmt.Errorf("malformed LDAP response: identifier 0x%x, want 0x%x", t, tag)
	}
	return v, nil
}

// integer reads an INTEGER or ENUMERATED.
func (d *decoder) integer() (int64, error) {
	t, v, err := d.next()
	if err != nil {
		return 0, err
	}
	if (t != tagInteger && t != tagEnumerated) || len(v) == 0 || len(v) > 8 {
		return 0, fmt.Errorf("malformed LDAP response: integer 0x%x of %d bytes", t, len(v))
	}
	n := int64(int8(v[0])) // sign
	for _, c := range v[1:] {
		n = n<<8 | int64(c)
	}
	return n, nil
}

// parseEntry decodes a SearchResultEntry's contents. Attribute names are
// interned in names, the values of multi-valued attributes in values.
func parseEntry(body []byte, names, values map[string]string) (*ldap.Entry, error) {
	d := decoder{b: body}
	dn, err := d.expect(tagOctetString)
	if err != nil {
		return nil, err
	}
	list, err := d.expect(tagSequence)
	if err != nil {
		return nil, err
	}
	e := &ldap.Entry{DN: string(dn)}
	attrs := decoder{b: list}
	for attrs.more() {
		a, err := attrs.expect(tagSequence)
		if err != nil {
			return nil, err
		}
		ad := decoder{b: a}
		name, err := ad.expect(tagOctetString)
		if err != nil {
			return nil, err
		}
		set, err := ad.expect(tagSet)
		if err != nil {
			return nil, err
		}
		n, ok := names[string(name)]
		if !ok {
			n = string(name)
			names[n] = n
		}
		// Count first, so the list is allocated once at its size.
		count := 0
		for vd := (decoder{b: set}); vd.more(); count++ {
			if _, err := vd.expect(tagOctetString); err != nil {
				return nil, err
			}
		}
		var vals []string
		if count > 0 {
			vals = make([]string, 0, count)
		}
		for vd := (decoder{b: set}); vd.more(); {
			v, _ := vd.expect(tagOctetString) // checked above
			if count == 1 {
				vals = append(vals, string(v))
				continue
			}
			s, ok := values[string(v)]
			if !ok {
				s = string(v)
				values[s] = s
			}
			vals = append(vals, s)
		}
		e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: n, Values: vals})
	}
	return e, nil
}

// resultError decodes an LDAPResult's code and message: nil for success.
func resultError(body []byte) error {
	d := decoder{b: body}
	code, err := d.integer()
	if err != nil {
		return err
	}
	if _, err := d.expect(tagOctetString); err != nil { // matchedDN
		return err
	}
	msg, err := d.expect(tagOctetString)
	if err != nil {
		return err
	}
	if code == ldap.LDAPResultSuccess {
		return nil
	}
	if code < 0 || code > 0xffff {
		return fmt.Errorf("malformed LDAP response: result code %d", code)
	}
	return ldap.NewError(uint16(code), errors.New(string(msg)))
}

// parseControls decodes the paging control of a response's controls.
func parseControls(b []byte) ([]ldap.Control, error) {
	var out []ldap.Control
	d := decoder{b: b}
	for d.more() {
		c, err := d.expect(tagSequence)
		if err != nil {
			return nil, err
		}
		cd := decoder{b: c}
		oid, err := cd.expect(tagOctetString)
		if err != nil {
			return nil, err
		}
		if string(oid) != ldap.ControlTypePaging {
			continue
		}
		var value []byte
		for cd.more() {
			t, v, err := cd.next()
			if err != nil {
				return nil, err
			}
			if t == tagOctetString {
				value = v
			}
		}
		vd := decoder{b: value}
		seq, err := vd.expect(tagSequence)
		if err != nil {
			return nil, fmt.Errorf("paging control: %w", err)
		}
		sd := decoder{b: seq}
		size, err := sd.integer()
		if err != nil {
			return nil, fmt.Errorf("paging control: %w", err)
		}
		cookie, err := sd.expect(tagOctetString)
		if err != nil {
			return nil, fmt.Errorf("paging control: %w", err)
		}
		out = append(out, &ldap.ControlPaging{PagingSize: uint32(max(size, 0)), Cookie: append([]byte(nil), cookie...)}) //nolint:gosec // a page size
	}
	return out, nil
}
