package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// validateCompose loads a Compose file the way `docker compose config` does: schema
// validation, interpolation, anchors and merges, then the model's own consistency checks
// (depends_on targets, volumes declared). The required secrets are given dummy values.
func validateCompose(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	env := map[string]string{
		"NOTIFY_JWT_SECRET":  "0123456789abcdef0123456789abcdef",
		"NOTIFY_PUBLISH_KEY": "validate-publish-key",
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: data}},
		Environment: env,
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("notify", true)
		o.ResolvePaths = true
	})
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	instances := 0
	for name, svc := range project.Services {
		if svc.Environment["NOTIFY_KAFKA_BROKERS"] != nil {
			instances++
			if svc.Environment["NOTIFY_MONGO_URI"] == nil {
				return fmt.Errorf("%s: notify service %s has no NOTIFY_MONGO_URI", file, name)
			}
		}
	}
	if instances < 2 {
		return fmt.Errorf("%s: expected at least two notify instances, found %d", file, instances)
	}
	fmt.Printf("ok  %s: %d services (%d notify instances)\n", file, len(project.Services), instances)
	return nil
}
