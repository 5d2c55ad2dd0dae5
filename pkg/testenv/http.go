package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

// httpOK returns a check that GETs url (trusting caFile, sending token) and
// wants 200.
func httpOK(url, caFile, token string) func() error {
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	return func() error {
		if caFile != "" && tr.TLSClientConfig.RootCAs == nil {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return fmt.Errorf("read CA %s: %w", caFile, err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tr.TLSClientConfig.RootCAs = pool
		}
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}
