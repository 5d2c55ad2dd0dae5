package reaper

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes/scheme"
)

// partialListAccept asks the API server to answer with the metadata of the
// objects only (no Secret data); a server that cannot answers 406 instead
// of sending whole Secrets.
const partialListAccept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

// statusError returns the API server's own error from body, a Status the
// client could not decode since it asked for PartialObjectMetadataList
// only; err when body holds none.
func statusError(body []byte, err error) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Status == metav1.StatusFailure {
		return apierrors.FromObject(&st)
	}
	return err
}

// deleteJobSecrets deletes the Secrets of job in namespace ns with one
// DELETE collection call selected by the object labels and job=<job>. The
// reaper holds no get, list or watch on Secrets (a stolen token reads no
// Secret): RBAC grants it only deletecollection, and the chart's admission
// guard confines that to user namespaces and to Secrets carrying the job
// label. The answer is read as PartialObjectMetadataList: names only, for
// the log and the metric. A real DELETE does return the deleted Secrets to
// its caller: the token reads a job Secret only by destroying it. In
// dry-run nothing is called (a server-side dry run would return the
// Secrets without deleting them, and the guard denies it): the log says
// that the job's Secrets, whose names the reaper cannot know, would go.
func (r *Reaper) deleteJobSecrets(ctx context.Context, ns, job, why string) error {
	log := r.log.With(zap.String("namespace", ns), zap.String("job", job), zap.String("reason", why))
	if r.cfg.DryRun {
		log.Info("Would delete the job's secrets", zap.Bool("dryRun", true))
		return nil
	}
	req, err := labels.NewRequirement(r.jobLabel, selection.Equals, []string{job})
	if err != nil {
		// A job id that is no label value cannot come from a label.
		return fmt.Errorf("delete secrets of job %q in %s: %w", job, ns, err)
	}
	sel := r.objSelector.Add(*req)
	opts := metav1.DeleteOptions{}
	body, err := r.client.CoreV1().RESTClient().Delete().Namespace(ns).Resource("secrets").
		VersionedParams(&metav1.ListOptions{LabelSelector: sel.String()}, scheme.ParameterCodec).
		SetHeader("Accept", partialListAccept).
		Body(&opts).Do(ctx).Raw()
	if err != nil {
		err = statusError(body, err)
		r.metrics.errors.Inc()
		log.Error("Failed to delete secrets", zap.Error(err))
		return fmt.Errorf("delete secrets of job %q in %s: %w", job, ns, err)
	}
	var list metav1.PartialObjectMetadataList
	if err := json.Unmarshal(body, &list); err != nil || list.Kind != "PartialObjectMetadataList" {
		r.metrics.errors.Inc()
		log.Error("Deleted secrets but could not read their names", zap.String("kind", list.Kind), zap.Error(err))
		return fmt.Errorf("delete secrets of job %q in %s: answer is %q, not a PartialObjectMetadataList: %v", job, ns, list.Kind, err)
	}
	for _, s := range list.Items {
		r.metrics.reaped.WithLabelValues(KindSecret).Inc()
		log.Info("Deleted secret", zap.String("secret", s.Name))
	}
	return nil
}
