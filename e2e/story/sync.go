package story

import (
	"context"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SyncLDAP runs ldap-configmap once and shows the maps it wrote.
func (s *Story) SyncLDAP(ctx context.Context) error {
	if _, err := s.runOnce(ctx, "ldap-configmap", "--once"); err != nil {
		return err
	}
	cms, err := s.env.Kube.Client.CoreV1().ConfigMaps(chartNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=ldap-configmap"})
	if err != nil {
		return fmt.Errorf("list the maps: %w", err)
	}
	s.Results.Maps = map[string]map[string]string{}
	for _, cm := range cms.Items {
		s.Results.Maps[cm.Name] = cm.Data
	}
	if len(s.Results.Maps) == 0 {
		return fmt.Errorf("ldap-configmap wrote no ConfigMap in %s", chartNamespace)
	}
	s.p.OK("ldap-configmap --once wrote %d ConfigMaps in %s", len(s.Results.Maps), chartNamespace)
	uid := s.Results.Maps["user-uid-map"]
	keys := make([]string, 0, len(uid))
	for k := range uid {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows [][]string
	for _, k := range keys {
		rows = append(rows, []string{k, uid[k], s.Results.Maps["user-gid-map"][k], s.Results.Maps["user-gids-map"][k], s.Results.Maps["user-groups-map"][k]})
	}
	s.p.Table([]string{"key (namespace)", "uid", "gid", "gids", "groups"}, rows)
	return nil
}
