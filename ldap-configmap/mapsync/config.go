// Package mapsync is the ldap-configmap pass: it reads users and groups from
// LDAP (pkg/ldapdir), renders one ConfigMap per enabled mapper and,
// optionally, identity annotations on each existing user namespace, and
// writes them with server-side apply, only when they changed and only when
// the safety guards pass.
package mapsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
	"github.com/kubehpc/kubehpc/pkg/naming"
)

const (
	// DefaultNamespace holds the ConfigMaps unless --namespace says otherwise.
	DefaultNamespace = "ldap-configmap"
	// MaxConfigMapBytes is the API server's limit on a ConfigMap's data.
	MaxConfigMapBytes = 1 << 20
	// DefaultFullResyncInterval bounds how long a change the incremental
	// reads missed (a replica's late change, a schema change) can last.
	DefaultFullResyncInterval = 3 * time.Hour
)

// Tool is ldap-configmap's name (binary, Event source, field manager and
// managed-by value), environment prefix, metric prefix (the original
// k8-ldap-configmap's, so its metric names stay), and the original's
// environment variables mapped to our flags. main.go, the metrics and the
// chart tests read it.
var Tool = app.Tool{
	Name:             "ldap-configmap",
	EnvPrefix:        "LDAP_CONFIGMAP",
	MetricsNamespace: "k8_ldap_configmap",
	EnvAliases: map[string]string{
		"LDAP_URL":               "ldap-url",
		"LDAP_TLS":               "ldap-tls",
		"LDAP_TLS_VERIFY":        "ldap-tls-verify",
		"LDAP_TLS_CA_CERT":       "ldap-tls-ca-cert",
		"LDAP_GROUP_BASE_DN":     "ldap-group-base-dn",
		"LDAP_USER_BASE_DN":      "ldap-user-base-dn",
		"LDAP_BIND_DN":           "ldap-bind-dn",
		"LDAP_BIND_PASSWORD":     "ldap-bind-password",
		"LDAP_GROUP_FILTER":      "ldap-group-filter",
		"LDAP_USER_FILTER":       "ldap-user-filter",
		"LDAP_PAGED_SEARCH":      "ldap-paged-search",
		"LDAP_PAGED_SEARCH_SIZE": "ldap-paged-search-size",
		"LDAP_MEMBER_SCHEME":     "ldap-member-scheme",
		"LDAP_USER_ATTR_MAP":     "ldap-user-attr-map",
		"LDAP_GROUP_ATTR_MAP":    "ldap-group-attr-map",
		"MAPPERS":                "mappers",
		"MAPPERS_GROUP_FILTER":   "mappers-group-filter",
		"MAPPERS_USER_FILTER":    "mappers-user-filter",
		"NAMESPACE":              "namespace",
		"USER_PREFIX":            "user-prefix",
		"INTERVAL":               "interval",
		"INTERLVAL":              "interval", // the original's typo
		"LISTEN_ADDRESS":         "admin-address",
		"LOG_LEVEL":              "log-level",
		// The downward API names of the tool's own Pod (the chart sets them).
		"POD_NAMESPACE": "pod-namespace",
		"POD_NAME":      "pod-name",
	},
}

// Config is the tool's configuration; it implements app.Command.
type Config struct {
	ldapdir.Options
	MapperFilters

	Mappers []string

	Namespace            string
	UserPrefix           string
	NamespaceAnnotations bool
	MaxDropFraction      float64
	AllowEmpty           bool
	AllowLargeDrop       bool
	DryRun               bool
	MaxConfigMapBytes    int
	Workers              int
	FullResyncInterval   time.Duration
	// PodNamespace and PodName name the tool's own Pod, which carries the
	// Events about no single object (IdentityCollision).
	PodNamespace, PodName string

	// Out receives the dry-run diff; nil means os.Stdout.
	Out io.Writer
}

// AddFlags binds the flags to c's fields, whose current values (NewConfig's
// defaults) are the flags' defaults.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	c.MapperFilters.addFlags(fs)
	fs.StringSliceVar(&c.Mappers, "mappers", c.Mappers, "Mappers to run: "+strings.Join(Mappers, ", ")+"; empty for none (annotations only)")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Namespace of the ConfigMaps")
	fs.StringVar(&c.UserPrefix, "user-prefix", c.UserPrefix, "Namespace prefix: keys (and annotated namespaces) are prefix + username, as pkg/naming maps them")
	fs.BoolVar(&c.NamespaceAnnotations, "namespace-annotations", c.NamespaceAnnotations, "Also write identity annotations (kubehpc.io/uid, gid, gids, groups, home) on each existing user namespace, and remove them when the user leaves LDAP; the owner annotation kubehpc.io/user is namespace-bootstrap's and never touched")
	fs.Float64Var(&c.MaxDropFraction, "max-drop-fraction", c.MaxDropFraction, "Refuse to write when an output would lose more than this fraction of its current users")
	fs.BoolVar(&c.AllowEmpty, "allow-empty", c.AllowEmpty, "Write even when LDAP returned no users (locks every user out)")
	fs.BoolVar(&c.AllowLargeDrop, "allow-large-drop", c.AllowLargeDrop, "Write even when more than --max-drop-fraction of the users would go")
	fs.BoolVar(&c.DryRun, "dry-run", c.DryRun, "Print the changes instead of writing them")
	fs.IntVar(&c.MaxConfigMapBytes, "max-configmap-bytes", c.MaxConfigMapBytes, "Refuse to write a ConfigMap whose data is larger than this (the API server's limit is 1 MiB)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "Concurrent namespace annotation writes (bounded by --kube-api-qps)")
	fs.DurationVar(&c.FullResyncInterval, "full-resync-interval", c.FullResyncInterval, "Read the whole directory at least this often; between, passes read only the entries changed since the last (entryCSN/contextCSN, modifyTimestamp or Active Directory's uSNChanged) plus a DN-only search for deletions; 0 reads everything every pass")
	fs.StringVar(&c.PodNamespace, "pod-namespace", c.PodNamespace, "Namespace of the tool's own Pod ($POD_NAMESPACE); with --pod-name, Events about no single object (IdentityCollision) are recorded on that Pod, else on the first ConfigMap")
	fs.StringVar(&c.PodName, "pod-name", c.PodName, "Name of the tool's own Pod ($POD_NAME)")
}

// NewConfig returns the configuration with its defaults, as the flags show
// them.
func NewConfig() *Config {
	return &Config{
		Options:            ldapdir.NewOptions(),
		Mappers:            []string{MapperUID, MapperGID},
		Namespace:          DefaultNamespace,
		UserPrefix:         naming.DefaultPrefix,
		MaxDropFraction:    0.1,
		MaxConfigMapBytes:  MaxConfigMapBytes,
		Workers:            8,
		FullResyncInterval: DefaultFullResyncInterval,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Options.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.MapperFilters.overrides(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if _, err := c.directory(false); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range c.Mappers {
		if !slices.Contains(Mappers, m) {
			errs = append(errs, fmt.Errorf("--mappers: unknown mapper %q: want %s", m, strings.Join(Mappers, ", ")))
		}
	}
	if len(c.Mappers) == 0 && !c.NamespaceAnnotations {
		errs = append(errs, errors.New("nothing to do: enable --mappers or --namespace-annotations"))
	}
	if e := validation.IsDNS1123Label(c.Namespace); len(e) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", c.Namespace, strings.Join(e, "; ")))
	}
	if err := naming.ValidatePrefix(c.UserPrefix); err != nil {
		errs = append(errs, fmt.Errorf("--user-prefix: %w", err))
	}
	if c.MaxDropFraction < 0 || c.MaxDropFraction > 1 {
		errs = append(errs, fmt.Errorf("--max-drop-fraction %v: want 0 to 1", c.MaxDropFraction))
	}
	if c.MaxConfigMapBytes <= 0 || c.MaxConfigMapBytes > MaxConfigMapBytes {
		errs = append(errs, fmt.Errorf("--max-configmap-bytes %d: want 1 to %d", c.MaxConfigMapBytes, MaxConfigMapBytes))
	}
	if c.FullResyncInterval < 0 {
		errs = append(errs, fmt.Errorf("--full-resync-interval %v: want 0 (always full) or more", c.FullResyncInterval))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers %d: want at least 1", c.Workers))
	}
	return errors.Join(errs...)
}

// directory builds the LDAP configuration; readSecrets reads the password
// file (at each pass, so a rotated Secret is picked up).
func (c *Config) directory(readSecrets bool) (*ldapConfig, error) {
	d, err := c.Options.Config(readSecrets)
	if err != nil {
		return nil, err
	}
	o, err := c.MapperFilters.overrides()
	if err != nil {
		return nil, err
	}
	if slices.Contains(c.Mappers, MapperHome) && d.UserAttrs.Home == "" {
		return nil, errors.New("the user-home mapper needs a home attribute in --ldap-user-attr-map")
	}
	return &ldapConfig{Config: d, Overrides: o}, nil
}

// Build returns the pass.
func (c *Config) Build(_ context.Context, env app.Env) (daemon.Pass, error) {
	return New(c, Deps{Client: env.Client, Log: env.Log, Registry: env.Registry, Clock: env.Clock, Recorder: env.EventRecorder(Tool)})
}
