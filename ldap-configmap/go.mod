module github.com/kubehpc/kubehpc/ldap-configmap

go 1.26.0

require github.com/kubehpc/kubehpc/pkg v0.0.0

replace github.com/kubehpc/kubehpc/pkg => ../pkg
