// Package template holds the default bootstrap template: one YAML file per
// concern, rendered per user with Go text/template. The Helm chart ships the
// same files in a ConfigMap that sites may edit; the binary falls back to
// this embedded copy when --template-dir is empty.
package template

import "embed"

// FS holds the default *.yaml manifests.
//
//go:embed *.yaml
var FS embed.FS
