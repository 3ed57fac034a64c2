package deploy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/overture-music/overture/internal/deploy"
)

// baseRepo is the name hack/deploy.sh builds deploy/image under for kind,
// and the repository of .ko.yaml's defaultBaseImage.
const baseRepo = "ko.local/overture-base"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, USER…
	args string
}

// readDockerfile parses the instructions of a Dockerfile: comments and
// blank lines dropped, lines ending in a backslash joined to the next.
func readDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []instruction
	var cur strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.Empty(t, cur.String(), "%s ends inside a continued line", path)
	return out
}

// The image every workload runs on has ffmpeg and ffprobe: the ingest
// function execs both from PATH (internal/media), and the static default
// base of ko has neither, so ingestion on a cluster failed at its first
// probe. deploy/image/Dockerfile installs them from Debian 12 and fails to
// build without them, runs as a numeric non-root user, and carries CA
// certificates; .ko.yaml and hack/deploy.sh make it the base of the one
// image ko builds.
func TestBaseImageHasFFmpeg(t *testing.T) {
	ins := readDockerfile(t, "../../deploy/image/Dockerfile")
	require.NotEmpty(t, ins)

	var from []string
	var runs, users []string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			from = append(from, in.args)
		case "RUN":
			runs = append(runs, in.args)
		case "USER":
			users = append(users, in.args)
		case "ENV":
			// PATH must keep /usr/bin, where Debian installs ffmpeg.
			require.NotContains(t, in.args, "PATH=", "the Dockerfile must not replace PATH")
		}
	}
	require.Equal(t, []string{"debian:12-slim"}, from, "one stage, Debian 12 (bookworm): FFmpeg 5.1, the version the tests run against")

	run := strings.Join(runs, "\n")
	install := regexp.MustCompile(`apt-get install -y --no-install-recommends ([a-z0-9 .+-]+?);`).FindStringSubmatch(run)
	require.NotNil(t, install, "the Dockerfile installs its packages with apt-get install -y --no-install-recommends")
	pkgs := strings.Fields(install[1])
	// Debian's ffmpeg package ships both ffmpeg and ffprobe.
	require.Contains(t, pkgs, "ffmpeg")
	require.Contains(t, pkgs, "ca-certificates", "TLS to managed services needs the CA bundle")
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		require.Regexp(t, `(^|; *)`+bin+` [^;]*-version`, run, "the build runs %s -version, so an image without it does not build", bin)
	}
	require.Contains(t, run, "rm -rf /var/lib/apt/lists/*", "the apt lists stay out of the image")

	require.NotEmpty(t, users, "the image sets a USER")
	user := users[len(users)-1]
	require.Regexp(t, `^[0-9]+(:[0-9]+)?$`, user, "USER is numeric, so runAsNonRoot can verify it")
	uid, _, _ := strings.Cut(user, ":")
	require.NotEqual(t, "0", uid, "the image runs as a non-root user")

	var ko struct {
		DefaultBaseImage   string            `json:"defaultBaseImage"`
		BaseImageOverrides map[string]string `json:"baseImageOverrides"`
		Builds             []struct {
			Main string `json:"main"`
		} `json:"builds"`
	}
	b, err := os.ReadFile("../../.ko.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &ko))
	base, _, _ := strings.Cut(ko.DefaultBaseImage, ":")
	require.Equal(t, baseRepo, base, ".ko.yaml's defaultBaseImage is the image of deploy/image")
	// Every component is cmd/overture: an override could only replace the
	// base of all of them at once.
	for path, img := range ko.BaseImageOverrides {
		require.True(t, strings.HasPrefix(img, baseRepo+":"), "baseImageOverrides[%s] = %s: not the image of deploy/image", path, img)
	}
	require.Len(t, ko.Builds, 1)
	require.Equal(t, "github.com/overture-music/overture/"+strings.TrimPrefix(ko.Builds[0].Main, "./"), deploy.ImportPath)
}

// hack/deploy.sh builds deploy/image and hands it to ko before ko builds
// anything: on kind into the Docker daemon under baseRepo (ko reads ko.local/
// images from there), elsewhere as a multi-platform image pushed to
// KO_DOCKER_REPO; an operator's KO_DEFAULTBASEIMAGE is kept.
func TestDeployBuildsTheBaseImage(t *testing.T) {
	b, err := os.ReadFile("../../hack/deploy.sh")
	require.NoError(t, err)
	sh := string(b)
	for _, want := range []string{
		`if [ -z "${KO_DEFAULTBASEIMAGE:-}" ]; then`,
		`KO_DEFAULTBASEIMAGE="` + baseRepo + `:$base_tag"`,
		`docker build --pull --platform "$KO_PLATFORMS"`,
		`KO_DEFAULTBASEIMAGE="$KO_DOCKER_REPO/overture-base:$base_tag"`,
		`docker buildx build --pull --platform "$KO_PLATFORMS"`,
		`--push deploy/image`,
		`export KO_DEFAULTBASEIMAGE`,
	} {
		require.Contains(t, sh, want)
	}
	// Both builds name deploy/image as their context, and the kind build
	// also tags the name .ko.yaml defaults to.
	require.Equal(t, 2, strings.Count(sh, " deploy/image\n"), "the docker build and the docker buildx build of deploy/image")
	require.Contains(t, sh, "-t "+baseRepo+":latest deploy/image")

	export := strings.Index(sh, "export KO_DEFAULTBASEIMAGE")
	resolve := strings.Index(sh, "ko resolve")
	apply := strings.Index(sh, `echo "== namespace`)
	require.Positive(t, resolve)
	require.Less(t, export, apply, "the base image is built before anything is applied, so a failed build changes nothing")
}

// hack/kind-up.sh installs what the rendered objects need, at the release
// whose CRDs the tests validate against: Knative Serving with Kourier,
// Eventing, the Kafka broker (controller and data plane) and a Kafka at the
// bootstrap server brokers/default.yaml names; sender identity on and
// deny-all authorization; every download pinned.
func TestKindUpInstallsWhatDeployNeeds(t *testing.T) {
	b, err := os.ReadFile("../../hack/kind-up.sh")
	require.NoError(t, err)
	sh := string(b)
	src, err := os.ReadFile("testdata/crds/SOURCE")
	require.NoError(t, err)

	require.Contains(t, sh, `KNATIVE_VERSION="${KNATIVE_VERSION:-knative-v1.18.0}"`)
	require.Contains(t, string(src), "knative-v1.18.0", "kind-up installs the release whose CRDs testdata/crds holds")
	for _, want := range []string{
		"gh knative/serving serving-crds.yaml",
		"gh knative/serving serving-core.yaml",
		"gh knative-extensions/net-kourier kourier.yaml",
		`"ingress-class":"kourier.ingress.networking.knative.dev"`,
		"gh knative/eventing eventing-crds.yaml",
		"gh knative/eventing eventing-core.yaml",
		"gh knative-extensions/eventing-kafka-broker eventing-kafka-controller.yaml",
		"gh knative-extensions/eventing-kafka-broker eventing-kafka-broker.yaml",
		`"authentication-oidc":"enabled"`,
		`"default-authorization-mode":"deny-all"`,
		`STRIMZI_VERSION="${STRIMZI_VERSION:-0.45.0}"`,
		"kubectl wait kafka/my-cluster --for=condition=Ready --timeout=600s -n kafka",
	} {
		require.Contains(t, sh, want)
	}
	// The Kafka kind-up creates (my-cluster in namespace kafka) is the one
	// the broker's ConfigMap names.
	broker, err := os.ReadFile("../../brokers/default.yaml")
	require.NoError(t, err)
	require.Contains(t, string(broker), `bootstrap.servers: "my-cluster-kafka-bootstrap.kafka:9092"`)

	for i, line := range strings.Split(sh, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		require.NotContains(t, line, "latest", "hack/kind-up.sh:%d: every version is pinned", i+1)
		require.NotContains(t, line, "|| true", "hack/kind-up.sh:%d: an error stops kind-up", i+1)
	}
}
