package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/overture-music/overture/internal/deploy"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/platform"
)

// runDeploy renders the Knative objects of every function and service:
// `overture deploy render` (hack/deploy.sh pipes it through ko and kubectl).
func runDeploy(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "render" {
		fmt.Fprintln(os.Stderr, "usage: overture deploy render [-namespace NS] [-image IMAGE]")
		return errUsage
	}
	fs := flag.NewFlagSet("deploy render", flag.ContinueOnError)
	ns := fs.String("namespace", manifest.DefaultNamespace, "namespace of the rendered objects")
	image := fs.String("image", "ko://"+deploy.ImportPath, "container image (ko:// is resolved by `ko resolve`)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	root, err := infra.ModuleRoot()
	if err != nil {
		return fmt.Errorf("find functions/: %w", err)
	}
	set, err := manifest.LoadDir(filepath.Join(root, "functions"))
	if err != nil {
		return err
	}
	objs, err := deploy.Render(set.Funcs, platform.Services(), deploy.Options{Namespace: *ns, Image: *image})
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	out, err := deploy.YAML(objs)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
