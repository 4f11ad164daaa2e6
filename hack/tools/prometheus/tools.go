//go:build tools

// Package tools records the commands this module pins, so `go mod tidy` keeps their dependencies.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
