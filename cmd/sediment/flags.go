package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// envName is the SEDIMENT_<NAME> variable of a flag.
func envName(flagName string) string {
	return "SEDIMENT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags applies, lowest precedence first: defaults, the --config file
// (config.go: flag names and Kafka's server.properties names), SEDIMENT_*
// variables, command-line flags.
func parseFlags(fs *flag.FlagSet, args []string, configFlag *string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Environment overrides the config file, so read the file first, then
	// the environment, and skip whatever the command line set.
	if configFlag != nil {
		path := *configFlag
		if !set["config"] {
			if v, ok := os.LookupEnv(envName("config")); ok {
				path = v
			}
		}
		if path != "" {
			if err := applyConfigFile(fs, path, set); err != nil {
				return err
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}
