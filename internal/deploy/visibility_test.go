package deploy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/deploy"
)

// Only the gateway and the S3 event source are on the ingress; every other
// Knative Service is cluster-local, so no one outside the cluster can post
// an event straight to a function (past the broker's EventPolicies) or call
// a service past the gateway.
func TestOnlyTheGatewayAndTheS3SourceArePublic(t *testing.T) {
	c := loadCluster(t, "music")
	var public []string
	services := 0
	for _, o := range c.rendered {
		if str(o, "apiVersion") != "serving.knative.dev/v1" || str(o, "kind") != "Service" {
			continue
		}
		services++
		name := str(o, "metadata.name")
		labels, _ := get(o, "metadata.labels")
		if v, _ := labels.(map[string]any)[deploy.VisibilityLabel].(string); v != deploy.ClusterLocal {
			public = append(public, name)
		}
	}
	require.Greater(t, services, 10, "the render should hold every function and service")
	require.ElementsMatch(t, []string{deploy.GatewayName, deploy.S3SourceName}, public)
}

// A POP's disk cache is writable by the image's user on any storage class:
// the pod runs as that user and the volume is given its group.
func TestPOPsOwnTheirCacheVolume(t *testing.T) {
	c := loadCluster(t, "music")
	pops := 0
	for _, o := range c.rendered {
		if str(o, "kind") != "StatefulSet" {
			continue
		}
		pops++
		sc, _ := get(o, "spec.template.spec.securityContext")
		m, _ := sc.(map[string]any)
		require.EqualValues(t, deploy.ImageUser, m["fsGroup"], "%s: fsGroup", str(o, "metadata.name"))
		require.EqualValues(t, deploy.ImageUser, m["runAsUser"], "%s: runAsUser", str(o, "metadata.name"))
	}
	require.NotZero(t, pops, "the render should hold the POPs")
}
