package ldapdir

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"unsafe"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

// message encodes an LDAPMessage the way a server does, with go-ldap's
// encoder, for the decoder's tests.
func message(id int64, op *ber.Packet, controls ...ldap.Control) []byte {
	env := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	env.AppendChild(op)
	if len(controls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "")
		for _, c := range controls {
			cs.AppendChild(c.Encode())
		}
		env.AppendChild(cs)
	}
	return env.Bytes()
}

func entryOp(dn string, attrs map[string][]string) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, name := range []string{"uid", "memberUid", "description"} {
		vals, ok := attrs[name]
		if !ok {
			continue
		}
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, ""))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, v := range vals {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, ""))
		}
		a.AppendChild(set)
		list.AppendChild(a)
	}
	op.AppendChild(list)
	return op
}

func doneOp(code int64, msg string) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultDone, nil, "")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, ""))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, ""))
	return op
}

// wireFrom is a wireConn reading the given server messages.
func wireFrom(msgs ...[]byte) *wireConn {
	return &wireConn{r: bufio.NewReader(bytes.NewReader(bytes.Join(msgs, nil))), msgID: 1}
}

// TestWireDecodesSearch proves the decoder against go-ldap's encoding: an
// entry with a long value (a multi-byte length), empty and many values, a
// response to another request skipped, the paging cookie, and a result
// code returned as an *ldap.Error with that code.
func TestWireDecodesSearch(t *testing.T) {
	long := strings.Repeat("x", 70000)
	members := make([]string, 300)
	for i := range members {
		members[i] = "user" + strings.Repeat("0", i%7)
	}
	paging := ldap.NewControlPaging(500)
	paging.SetCookie([]byte("next\x00page"))
	w := wireFrom(
		message(7, entryOp("uid=old,dc=x", nil)), // an abandoned request's
		message(1, entryOp("cn=g,ou=groups,dc=x", map[string][]string{"memberUid": members, "description": {long}, "uid": {}})),
		message(1, entryOp("uid=a,dc=x", map[string][]string{"uid": {"a"}})),
		message(1, doneOp(0, ""), paging),
	)
	var got []*ldap.Entry
	var cookie []byte
	for {
		tag, body, controls, err := w.receive(1)
		if err != nil {
			t.Fatal(err)
		}
		if tag == tagSearchDone {
			if err := resultError(body); err != nil {
				t.Fatal(err)
			}
			cs, err := parseControls(controls)
			if err != nil {
				t.Fatal(err)
			}
			cookie = cs[0].(*ldap.ControlPaging).Cookie
			break
		}
		e, err := parseEntry(body, map[string]string{}, map[string]string{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want := []*ldap.Entry{
		{DN: "cn=g,ou=groups,dc=x", Attributes: []*ldap.EntryAttribute{{Name: "uid"}, {Name: "memberUid", Values: members}, {Name: "description", Values: []string{long}}}},
		{DN: "uid=a,dc=x", Attributes: []*ldap.EntryAttribute{{Name: "uid", Values: []string{"a"}}}},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(ldap.EntryAttribute{})); d != "" {
		t.Errorf("entries (-want +got):\n%s", d)
	}
	if string(cookie) != "next\x00page" {
		t.Errorf("paging cookie = %q", cookie)
	}
	if err := resultError(nil); err == nil {
		t.Error("resultError(empty) = nil, want an error")
	}
	w = wireFrom(message(1, doneOp(ldap.LDAPResultSizeLimitExceeded, "size limit")))
	_, body, _, err := w.receive(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := resultError(body); !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || !strings.Contains(err.Error(), "size limit") {
		t.Errorf("resultError(sizeLimitExceeded) = %v, want an *ldap.Error with that code and message", err)
	}
}

// TestWireRejectsMalformed proves that a malformed or hostile response is
// an error, never a panic or an allocation the server chose.
func TestWireRejectsMalformed(t *testing.T) {
	good := message(1, entryOp("uid=a,dc=x", map[string][]string{"uid": {"a"}}))
	tests := map[string][]byte{
		"empty":               {},
		"not a sequence":      {0x04, 0x00},
		"huge length":         {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff},
		"length of 5 bytes":   {0x30, 0x85, 0, 0, 0, 0, 1},
		"indefinite length":   {0x30, 0x80, 0, 0},
		"truncated":           good[:len(good)-3],
		"no message ID":       {0x30, 0x02, 0x64, 0x00},
		"message ID too long": {0x30, 0x0b, 0x02, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			w := &wireConn{r: bufio.NewReader(bytes.NewReader(b)), msgID: 1}
			if _, _, _, err := w.receive(1); err == nil {
				t.Errorf("receive(%x) = nil error", b)
			}
		})
	}
	// Inner elements that lie about their length.
	for name, body := range map[string][]byte{
		"DN longer than the entry": {0x04, 0x7f, 'a'},
		"attribute list missing":   {0x04, 0x01, 'a'},
		"value not a string":       {0x04, 0x01, 'a', 0x30, 0x09, 0x30, 0x07, 0x04, 0x01, 'u', 0x31, 0x02, 0x02, 0x00},
		"multi-byte identifier":    {0x1f, 0x01, 0x00},
	} {
		if _, err := parseEntry(body, map[string]string{}, map[string]string{}); err == nil {
			t.Errorf("parseEntry(%s) = nil error", name)
		}
	}
	if _, err := parseControls([]byte{0x30, 0x03, 0x04, 0x16, '1'}); err == nil {
		t.Error("parseControls(truncated) = nil error")
	}
	if err := resultError([]byte{0x0a, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9}); err == nil {
		t.Errorf("resultError(9-byte code) = %v, want an error", err)
	}
}

// FuzzWireMessage feeds arbitrary server bytes to the decoder: it must
// return an error or a result, never panic.
func FuzzWireMessage(f *testing.F) {
	paging := ldap.NewControlPaging(10)
	paging.SetCookie([]byte("c"))
	f.Add(message(1, entryOp("uid=a,dc=x", map[string][]string{"uid": {"a"}, "memberUid": {"b", "c"}})))
	f.Add(message(1, doneOp(0, ""), paging))
	f.Add(message(1, doneOp(32, "no such object")))
	f.Fuzz(func(t *testing.T, b []byte) {
		w := &wireConn{r: bufio.NewReader(bytes.NewReader(b)), msgID: 1}
		tag, body, controls, err := w.receive(1)
		if err != nil {
			return
		}
		switch tag {
		case tagSearchEntry:
			_, _ = parseEntry(body, map[string]string{}, map[string]string{})
		default:
			_ = resultError(body)
			_, _ = parseControls(controls)
		}
	})
}

// TestWireInternsValues proves that equal values of multi-valued attributes
// (memberUid lists of different groups) are decoded into one string, and
// each list is allocated at its size: what the cache keeps between passes
// at 50,000 users (docs/benchmarks/ldap-configmap.md).
func TestWireInternsValues(t *testing.T) {
	names, values := map[string]string{}, map[string]string{}
	var lists [][]string
	for _, g := range []string{"cn=a,dc=x", "cn=b,dc=x"} {
		body := entryOp(g, map[string][]string{"memberUid": {"alice", "bob", "carol"}})
		_, b, _, err := wireFrom(message(1, body)).receive(1)
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseEntry(b, names, values)
		if err != nil {
			t.Fatal(err)
		}
		v := e.GetAttributeValues("memberUid")
		if len(v) != 3 || cap(v) != 3 {
			t.Fatalf("parseEntry(%s) memberUid = %q (cap %d), want 3 values at capacity 3", g, v, cap(v))
		}
		lists = append(lists, v)
	}
	for i := range lists[0] {
		if lists[0][i] != lists[1][i] || unsafe.StringData(lists[0][i]) != unsafe.StringData(lists[1][i]) {
			t.Errorf("memberUid %q of two groups are two strings, want one", lists[0][i])
		}
	}
}
