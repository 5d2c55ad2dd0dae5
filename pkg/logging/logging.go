// Package logging builds the one zap logger a tool uses, and routes
// client-go's klog output into it.
package logging

import (
	"fmt"
	"io"
	"os"

	"github.com/go-logr/zapr"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
	"k8s.io/klog/v2"
)

// Options configure the logger.
type Options struct {
	// Format is "json" (for clusters), "console" (for people) or "auto":
	// console on a terminal, JSON otherwise.
	Format string
	// Level is debug, info, warn or error.
	Level string
}

// AddFlags registers --log-format and --log-level.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	if o.Format == "" {
		o.Format = "auto"
	}
	if o.Level == "" {
		o.Level = "info"
	}
	fs.StringVar(&o.Format, "log-format", o.Format, "Log format: json, console, or auto (console on a terminal, JSON otherwise)")
	fs.StringVar(&o.Level, "log-level", o.Level, "Log level: debug, info, warn or error")
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch o.Format {
	case "json", "console", "auto", "":
	default:
		return fmt.Errorf("--log-format %q: want json, console or auto", o.Format)
	}
	if _, err := zapcore.ParseLevel(o.levelOrDefault()); err != nil {
		return fmt.Errorf("--log-level %q: %w", o.Level, err)
	}
	return nil
}

func (o *Options) levelOrDefault() string {
	if o.Level == "" {
		return "info"
	}
	return o.Level
}

// New builds a logger writing to w (os.Stderr in main). The returned logger is
// named after the tool.
func New(o Options, tool string, w io.Writer) (*zap.Logger, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	level, _ := zapcore.ParseLevel(o.levelOrDefault())
	format := o.Format
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "console"
		}
	}
	var enc zapcore.Encoder
	if format == "console" {
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	} else {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		cfg.TimeKey = "time"
		enc = zapcore.NewJSONEncoder(cfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.AddCaller()).Named(tool), nil
}

// RouteKlog sends client-go's klog output (leader election, reflectors) to
// log. klog is process-global, so only main calls this.
func RouteKlog(log *zap.Logger) {
	klog.SetLogger(zapr.NewLogger(log.Named("client-go")))
}
