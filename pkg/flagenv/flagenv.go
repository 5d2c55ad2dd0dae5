// Package flagenv lets every flag of a tool be set by an environment variable
// under the tool's prefix: an explicit flag beats the variable, which beats the
// default.
package flagenv

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// EnvName returns the variable for a flag: PREFIX_FLAG_NAME, upper case, with
// dashes and dots turned into underscores.
func EnvName(prefix, flag string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return strings.ToUpper(r.Replace(prefix) + "_" + r.Replace(flag))
}

// Apply sets every flag of fs that was not given on the command line from its
// environment variable, if that is set. aliases maps extra (legacy) variable
// names to flag names; the prefixed name wins over an alias. lookup is
// os.LookupEnv in production. It returns every bad value, joined.
func Apply(fs *pflag.FlagSet, prefix string, aliases map[string]string, lookup func(string) (string, bool)) error {
	byFlag := map[string][]string{}
	for env, flag := range aliases {
		if fs.Lookup(flag) == nil {
			return fmt.Errorf("env alias %s names unknown flag --%s", env, flag)
		}
		byFlag[flag] = append(byFlag[flag], env)
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		names := append([]string{EnvName(prefix, f.Name)}, byFlag[f.Name]...)
		for _, env := range names {
			v, ok := lookup(env)
			if !ok {
				continue
			}
			if err := setFromEnv(fs, f, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s for --%s: %w", env, f.Name, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// setFromEnv sets a flag from a variable. Slice flags take a comma-separated
// list and replace the default rather than appending to it.
func setFromEnv(fs *pflag.FlagSet, f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		var items []string
		if v != "" {
			items = strings.Split(v, ",")
		}
		if err := sv.Replace(items); err != nil {
			return err
		}
		f.Changed = true
		return nil
	}
	return fs.Set(f.Name, v)
}

// Help appends to each flag's usage the variable that can set it.
func Help(fs *pflag.FlagSet, prefix string) {
	fs.VisitAll(func(f *pflag.Flag) {
		env := EnvName(prefix, f.Name)
		if !strings.Contains(f.Usage, env) {
			f.Usage += " [$" + env + "]"
		}
	})
}
