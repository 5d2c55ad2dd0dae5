package testenv

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// SeedLDIF is the small directory the tests and the demo start from: RFC2307
// posixAccount/posixGroup with memberUid under ou=people/ou=groups, and
// groupOfNames with member DNs under ou=projects.
//
//go:embed testdata/directory.ldif
var SeedLDIF []byte

// SlapdOptions configure StartSlapd.
type SlapdOptions struct {
	// Dir holds config, data and certificates; empty means a temporary
	// directory removed by Stop.
	Dir string
	// Suffix is the base DN; default dc=example,dc=org.
	Suffix string
	// LDIF is loaded with slapadd -q before start; nil means SeedLDIF. It must
	// hold the suffix entry.
	LDIF []byte
	// SizeLimit is the server's size limit for unpaged searches (AD caps at
	// 1000); paged searches pass it. Default 500. The root DN is exempt:
	// bind as the Reader to be held to it.
	SizeLimit int
	// Reader adds cn=reader,<suffix>, a plain entry with a password and
	// read access (Slapd.ReaderDN, ReaderPassword): unlike the root DN it is
	// held to SizeLimit, so a client must page to read more entries.
	Reader bool
	// SyncProv loads the syncprov overlay, which keeps contextCSN on the
	// suffix entry (OpenLDAP's "anything changed?" marker).
	SyncProv bool
}

// Slapd is a running OpenLDAP server with plain, StartTLS and ldaps listeners.
type Slapd struct {
	Dir string
	// URL is ldap://127.0.0.1:port (StartTLS works on it), LDAPSURL ldaps://127.0.0.1:port.
	URL, LDAPSURL string
	// CAFile is the PEM CA that signed the server certificate.
	CAFile   string
	CA       *CA
	Suffix   string
	BindDN   string
	Password string
	// ReaderDN and ReaderPassword are set with SlapdOptions.Reader.
	ReaderDN, ReaderPassword string
	// StartupTime covers config, bulk load and start.
	StartupTime time.Duration

	ownDir bool
	proc   *process
}

const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
{{- if .SyncProv}}
moduleload syncprov
{{- end}}
pidfile {{.Dir}}/slapd.pid
argsfile {{.Dir}}/slapd.args
loglevel none
TLSCACertificateFile {{.CAFile}}
TLSCertificateFile {{.CertFile}}
TLSCertificateKeyFile {{.KeyFile}}
sizelimit size.soft={{.SizeLimit}} size.hard={{.SizeLimit}} size.prtotal=unlimited
database mdb
maxsize 1073741824
suffix "{{.Suffix}}"
rootdn "{{.BindDN}}"
rootpw {{.Password}}
directory {{.Dir}}/data
index objectClass eq
index uid,cn,memberUid eq
index uidNumber,gidNumber eq
index member,memberOf eq
index entryCSN eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
{{- if .SyncProv}}
overlay syncprov
{{- end}}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`

// StartSlapd writes a config, bulk-loads the LDIF and starts slapd in the
// foreground on loopback, waiting until the root DSE answers.
func StartSlapd(ctx context.Context, o SlapdOptions) (*Slapd, error) {
	start := time.Now()
	slapd, err := findBinary("slapd")
	if err != nil {
		return nil, err
	}
	slapadd, err := findBinary("slapadd")
	if err != nil {
		return nil, err
	}
	s := &Slapd{Dir: o.Dir, Suffix: o.Suffix, Password: randomToken()}
	if s.Suffix == "" {
		s.Suffix = "dc=example,dc=org"
	}
	s.BindDN = "cn=admin," + s.Suffix
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "kubehpc-slapd-"); err != nil {
			return nil, fmt.Errorf("create slapd dir: %w", err)
		}
		s.ownDir = true
	}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("create slapd data dir: %w", err)
	}
	if s.CA, err = NewCA("kubehpc test LDAP CA"); err != nil {
		return nil, err
	}
	caFile, certFile, keyFile, err := s.CA.WriteFiles(s.Dir, "slapd")
	if err != nil {
		return nil, err
	}
	s.CAFile = caFile
	sizeLimit := o.SizeLimit
	if sizeLimit == 0 {
		sizeLimit = 500
	}
	var conf bytes.Buffer
	err = template.Must(template.New("slapd.conf").Parse(slapdConf)).Execute(&conf, map[string]any{
		"Dir": s.Dir, "CAFile": caFile, "CertFile": certFile, "KeyFile": keyFile, "SizeLimit": sizeLimit,
		"Suffix": s.Suffix, "BindDN": s.BindDN, "Password": s.Password, "SyncProv": o.SyncProv,
	})
	if err != nil {
		return nil, fmt.Errorf("render slapd.conf: %w", err)
	}
	confPath := filepath.Join(s.Dir, "slapd.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("write slapd.conf: %w", err)
	}
	ldif := o.LDIF
	if ldif == nil {
		ldif = SeedLDIF
	}
	ldifPath := filepath.Join(s.Dir, "data.ldif")
	if err := os.WriteFile(ldifPath, ldif, 0o600); err != nil {
		return nil, fmt.Errorf("write LDIF: %w", err)
	}
	addArgs := []string{"-q", "-f", confPath, "-l", ldifPath}
	if o.SyncProv {
		addArgs = append(addArgs, "-w") // write contextCSN after the load
	}
	if out, err := exec.CommandContext(ctx, slapadd, addArgs...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("slapadd -q: %w: %s", err, tail(string(out), 2000))
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s.URL = "ldap://" + hostPort(ports[0])
	s.LDAPSURL = "ldaps://" + hostPort(ports[1])
	s.proc, err = startProcess("slapd", filepath.Join(s.Dir, "slapd.log"), slapd,
		"-d", "0", "-f", confPath, "-h", s.URL+"/ "+s.LDAPSURL+"/")
	if err != nil {
		return nil, err
	}
	if err := s.proc.waitFor(ctx, 30*time.Second, s.rootDSE); err != nil {
		return nil, err
	}
	if o.Reader {
		s.ReaderDN, s.ReaderPassword = "cn=reader,"+s.Suffix, randomToken()
		err := s.Modify(ctx, fmt.Sprintf("dn: %s\nchangetype: add\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: %s\n",
			s.ReaderDN, s.ReaderPassword))
		if err != nil {
			return nil, fmt.Errorf("add the reader entry: %w", err)
		}
	}
	s.StartupTime = time.Since(start)
	ok = true
	return s, nil
}

func (s *Slapd) rootDSE() error {
	conn, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 5, false,
		"(objectClass=*)", []string{"supportedControl"}, nil))
	return err
}

// Modify applies LDIF change records (changetype: add/modify/delete) with
// ldapmodify as the root DN.
func (s *Slapd) Modify(ctx context.Context, ldif string) error {
	bin, err := findBinary("ldapmodify")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "-x", "-H", s.URL, "-D", s.BindDN, "-w", s.Password)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ldapmodify: %w: %s", err, out)
	}
	return nil
}

// Stop stops slapd (SIGTERM) and removes the directory if StartSlapd made it.
func (s *Slapd) Stop() {
	if s == nil {
		return
	}
	s.proc.stop(5 * time.Second)
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
	}
}
