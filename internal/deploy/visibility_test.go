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
