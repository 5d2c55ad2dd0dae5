package main

import (
	"bytes"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// caBundlePath is where Go's crypto/x509 (and OpenSSL-style tools) look for
// the system roots on Linux.
const caBundlePath = "etc/ssl/certs/ca-certificates.crt"

// caBundle returns the Mozilla NSS root certificates as PEM, from
// golang.org/x/crypto/x509roots/fallback/bundle: a Go module pinned by version
// and checksum in go.sum, so the bundle is the same on every build machine
// (the build machine's own /etc/ssl/certs would make the image depend on
// where it was built). Roots that NSS trusts only for certificates issued
// before a date (distrust-after) are left out: a PEM file cannot carry that
// constraint, and including them would trust more than NSS does. A site whose
// LDAP server uses a private CA gives it with ldap.caBundle.secretName.
func caBundle() (pemBytes []byte, included, constrained int, err error) {
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			constrained++
			continue
		}
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, 0, 0, fmt.Errorf("encode root certificate: %w", err)
		}
		included++
	}
	if included == 0 {
		return nil, 0, 0, fmt.Errorf("the root bundle has no unconstrained certificate")
	}
	return b.Bytes(), included, constrained, nil
}
