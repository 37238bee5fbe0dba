package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// validateDockerfile parses a Dockerfile with BuildKit's parser (syntax, instruction flags),
// then checks the image's promises: several stages, the build runs scripts/build-server.sh
// (the command CI runs), the final stage runs as a non-root user and has a HEALTHCHECK.
func validateDockerfile(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, w := range ast.Warnings {
		return fmt.Errorf("%s: %s", file, w.Short)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(stages) < 2 {
		return fmt.Errorf("%s: not a multi-stage build (%d stage)", file, len(stages))
	}
	buildsWithScript := false
	for _, st := range stages[:len(stages)-1] {
		for _, cmd := range st.Commands {
			if run, ok := cmd.(*instructions.RunCommand); ok &&
				strings.Contains(strings.Join(run.CmdLine, " "), "scripts/build-server.sh") {
				buildsWithScript = true
			}
		}
	}
	if !buildsWithScript {
		return fmt.Errorf("%s: no build stage runs scripts/build-server.sh (the build command CI runs)", file)
	}
	final := stages[len(stages)-1]
	user, healthcheck, entrypoint := "", false, false
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			healthcheck = c.Health != nil && len(c.Health.Test) > 0 && c.Health.Test[0] != "NONE"
		case *instructions.EntrypointCommand:
			entrypoint = true
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0:") || user == "0" {
		return fmt.Errorf("%s: the final stage runs as root (USER %q)", file, user)
	}
	if !healthcheck {
		return fmt.Errorf("%s: the final stage has no HEALTHCHECK", file)
	}
	if !entrypoint {
		return fmt.Errorf("%s: the final stage has no ENTRYPOINT", file)
	}
	fmt.Printf("ok  %s: %d stages, final %q as user %s with a HEALTHCHECK\n", file, len(stages), final.BaseName, user)
	return nil
}
