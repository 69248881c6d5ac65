// Command dowasm serves Durable Objects compiled to WebAssembly.
package main

import (
	"context"
	"os"

	"github.com/dowasm/dowasm/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args, os.Stdout, os.Stderr))
}
