//go:build tools

// Package tools pins kube-linter for `make tools`. The Go module proxy serves kube-linter
// only under its GitHub path, while its go.mod names golang.stackrox.io/kube-linter; the
// replace directive in go.mod bridges the two.
package tools

import _ "golang.stackrox.io/kube-linter/cmd/kube-linter"
