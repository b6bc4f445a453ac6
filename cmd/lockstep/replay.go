package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "not built yet",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			return errors.New("replay: not built yet")
		},
	}
}
