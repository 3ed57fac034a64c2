package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/overture-music/overture/internal/deploy"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/platform"
)

// runDeploy renders what `make deploy` applies (hack/deploy.sh pipes it
// through ko and kubectl):
//
//	overture deploy render   brokers/, every function and service, the S3
//	                         event source, CDC, the POPs, triggers/
//	overture deploy config   the Secrets and ConfigMaps of deploy/config.yaml
func runDeploy(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "render" && args[0] != "config") {
		fmt.Fprintln(os.Stderr, "usage: overture deploy render [-namespace NS] [-image IMAGE] [-config FILE] [-replication-factor N]\n       overture deploy config [-namespace NS] [-config FILE] [-existing FILE|-]")
		return errUsage
	}
	root, err := infra.ModuleRoot()
	if err != nil {
		return fmt.Errorf("find the repository: %w", err)
	}
	fs := flag.NewFlagSet("deploy "+args[0], flag.ContinueOnError)
	ns := fs.String("namespace", manifest.DefaultNamespace, "namespace of every object")
	cfgPath := fs.String("config", filepath.Join(root, "deploy", "config.yaml"), "the settings list")
	image := fs.String("image", "ko://"+deploy.ImportPath, "container image (ko:// is resolved by `ko resolve`)")
	rf := fs.String("replication-factor", "", "Kafka topic replication factor of the broker (empty: brokers/default.yaml's)")
	existing := fs.String("existing", "", "`kubectl get secrets,configmaps -o json` of the namespace (- for stdin): values kept")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := deploy.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	var objs []deploy.Object
	if args[0] == "config" {
		objs, err = deployConfig(cfg, *ns, *existing)
	} else {
		objs, err = deployRender(root, cfg, *ns, *image, *rf)
	}
	if err != nil {
		return err
	}
	out, err := deploy.YAML(objs)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

func deployRender(root string, cfg *deploy.Config, ns, image, rf string) ([]deploy.Object, error) {
	set, err := manifest.LoadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, err
	}
	brokers, err := deploy.ReadManifests(filepath.Join(root, "brokers"))
	if err != nil {
		return nil, err
	}
	triggers, err := deploy.ReadManifests(filepath.Join(root, "triggers"))
	if err != nil {
		return nil, err
	}
	deploy.Rebase(brokers, ns)
	deploy.Rebase(triggers, ns)
	if rf != "" {
		if err := deploy.SetReplicationFactor(brokers, rf); err != nil {
			return nil, err
		}
	}
	work, err := deploy.Render(set.Funcs, platform.Services(), deploy.Options{Namespace: ns, Image: image, Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return append(append(brokers, work...), triggers...), nil
}

// deployConfig resolves every setting: the environment (and the KEY=value
// file OVERTURE_ENV names) first, then what the cluster holds, then a
// generated or default value. Values go to stdout only, as Secrets.
func deployConfig(cfg *deploy.Config, ns, existingPath string) ([]deploy.Object, error) {
	given := map[string]string{}
	if f := os.Getenv("OVERTURE_ENV"); f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("OVERTURE_ENV: %w", err)
		}
		given, err = deploy.ParseEnvFile(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("OVERTURE_ENV %s: %w", f, err)
		}
	}
	have := map[deploy.Ref]string{}
	if existingPath != "" {
		var b []byte
		var err error
		if existingPath == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(existingPath)
		}
		if err != nil {
			return nil, fmt.Errorf("existing: %w", err)
		}
		if have, err = deploy.ExistingValues(b); err != nil {
			return nil, err
		}
	}
	vals, err := cfg.Values(ns, func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			return v, true
		}
		v, ok := given[k]
		return v, ok
	}, have, nil)
	if err != nil {
		return nil, err
	}
	return cfg.ConfigObjects(ns, vals), nil
}
