package main

import (
	"io"
	"reflect"
	"testing"

	"github.com/datavision/des/controllers"
)

func TestControllerFlagsMakeJobDefaults(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want controllers.JobDefaults
	}{
		{"defaults", nil, nil,
			controllers.JobDefaults{Image: "ghcr.io/datavision/des:latest", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 86400}},
		{"flags", nil, []string{"--pod-host-network", "--packer-service-account=runner", "--job-ttl=1h"},
			controllers.JobDefaults{Image: "ghcr.io/datavision/des:latest", ServiceAccountName: "runner", TTLSecondsAfterFinished: 3600, HostNetwork: true}},
		{"environment", map[string]string{"DES_POD_HOST_NETWORK": "true", "DES_PACKER_IMAGE": "des:dev"}, nil,
			controllers.JobDefaults{Image: "des:dev", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 86400, HostNetwork: true}},
		{"a flag beats the environment", map[string]string{"DES_POD_HOST_NETWORK": "true"}, []string{"--pod-host-network=false"},
			controllers.JobDefaults{Image: "ghcr.io/datavision/des:latest", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 86400}},
		{"allow-lists, repeated and comma-separated", nil, []string{
			"--allowed-packer-images=des:v2, des@sha256:abc", "--allowed-packer-images=des:v3",
			"--allowed-packer-service-accounts=big-packer,,", "--allowed-packer-service-accounts", "gpu-packer"},
			controllers.JobDefaults{Image: "ghcr.io/datavision/des:latest", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 86400,
				AllowedImages: []string{"des:v2", "des@sha256:abc", "des:v3"}, AllowedServiceAccounts: []string{"big-packer", "gpu-packer"}}},
		{"allow-lists from the environment", map[string]string{"DES_ALLOWED_PACKER_IMAGES": "des:v2,des:v3", "DES_ALLOWED_PACKER_SERVICE_ACCOUNTS": " big-packer "}, nil,
			controllers.JobDefaults{Image: "ghcr.io/datavision/des:latest", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 86400,
				AllowedImages: []string{"des:v2", "des:v3"}, AllowedServiceAccounts: []string{"big-packer"}}},
		{"an allow-list flag replaces the environment's", map[string]string{"DES_ALLOWED_PACKER_IMAGES": "des:v2"}, []string{"--allowed-packer-images=des:v9"},
			controllers.JobDefaults{Image: "ghcr.io/datavision/des:latest", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 86400,
				AllowedImages: []string{"des:v9"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"DES_POD_HOST_NETWORK", "DES_PACKER_IMAGE", "DES_PACKER_SERVICE_ACCOUNT",
				"DES_ALLOWED_PACKER_IMAGES", "DES_ALLOWED_PACKER_SERVICE_ACCOUNTS"} {
				t.Setenv(name, tc.env[name])
			}
			c, f := newControllerCommand(io.Discard)
			if _, code, ok := c.Parse(tc.args); !ok {
				t.Fatalf("flags %q refused (exit %d)", tc.args, code)
			}
			if got := f.jobDefaults(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("JobDefaults = %+v, want %+v", got, tc.want)
			}
		})
	}
}
