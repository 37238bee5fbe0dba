// Command validate checks the deploy files offline, without a cluster or a Docker engine:
//
//	validate k8s FILE...        rendered Kubernetes manifests (multi-document YAML)
//	validate compose FILE       a Compose file (compose-spec schema and loader)
//	validate dockerfile FILE    a Dockerfile (BuildKit's own parser)
//
// Manifests are decoded strictly into the typed k8s.io/api objects (and the
// prometheus-operator types for ServiceMonitor): an unknown or misspelt field, a wrong type,
// a bad quantity or an unknown kind fails, as the API server would refuse it. Then the
// chart's promises are checked (probes, drain, non-root, secrets from Secrets).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: validate k8s FILE... | compose FILE | dockerfile FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "k8s":
		err = validateK8s(os.Args[2:])
	case "compose":
		err = validateCompose(os.Args[2])
	case "dockerfile":
		err = validateDockerfile(os.Args[2])
	default:
		err = fmt.Errorf("unknown check %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
		os.Exit(1)
	}
}
