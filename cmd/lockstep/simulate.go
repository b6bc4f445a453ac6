package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:  "simulate",
		Usage: "not built yet",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			return errors.New("simulate: not built yet")
		},
	}
}
