//go:build tools

// Package tools makes `go mod tidy` record every module the three commands need, so build.sh
// can build them with a complete go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
