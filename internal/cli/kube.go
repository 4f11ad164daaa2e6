package cli

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeClient is a client of the cluster with scheme's types: from the kubeconfig file when one is
// given, else from controller-runtime's search (in-cluster config, $KUBECONFIG, ~/.kube/config).
// userAgent, when set, names the subcommand in the API server's audit log.
func KubeClient(kubeconfig, userAgent string, scheme *runtime.Scheme) (client.Client, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if userAgent != "" {
		cfg.UserAgent = userAgent
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}
