package testenv

import (
	"bytes"
	"fmt"
)

// GenerateDirectory returns LDIF for a large directory under suffix: users
// user00001… (uidNumber 100000+i, a private group each) and projects
// proj0001… posixGroups (gidNumber 200000+j) with memberUid, each user in
// groupsPerUser projects. It is what the scale benchmarks load with slapadd -q.
func GenerateDirectory(suffix string, users, projects, groupsPerUser int) []byte {
	var b bytes.Buffer
	b.Grow(users*400 + projects*64)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Scale\ndc: %s\n\n", suffix, firstRDNValue(suffix))
	for _, ou := range []string{"people", "groups"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, suffix, ou)
	}
	for i := range users {
		uid := fmt.Sprintf("user%05d", i)
		fmt.Fprintf(&b, "dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: %s\ncn: %s\nsn: %s\nuidNumber: %d\ngidNumber: %d\nhomeDirectory: /home/%s\n\n",
			uid, suffix, uid, uid, uid, 100000+i, 100000+i, uid)
	}
	members := make([][]int, projects)
	if projects > 0 {
		for i := range users {
			for k := range min(groupsPerUser, projects) {
				j := (i*7 + k*(projects/max(groupsPerUser, 1)+1)) % projects
				members[j] = append(members[j], i)
			}
		}
	}
	for j := range projects {
		fmt.Fprintf(&b, "dn: cn=proj%04d,ou=groups,%s\nobjectClass: posixGroup\ncn: proj%04d\ngidNumber: %d\n", j, suffix, j, 200000+j)
		seen := map[int]bool{}
		for _, i := range members[j] {
			if !seen[i] {
				seen[i] = true
				fmt.Fprintf(&b, "memberUid: user%05d\n", i)
			}
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func firstRDNValue(dn string) string {
	for i := 0; i < len(dn); i++ {
		if dn[i] == '=' {
			for j := i + 1; j < len(dn); j++ {
				if dn[j] == ',' {
					return dn[i+1 : j]
				}
			}
			return dn[i+1:]
		}
	}
	return dn
}
