package meta

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapToSlog returns a zap logger (what etcd's server and client log through) that forwards
// entries at warn and above to lg, so etcd stays quiet and its warnings land in Sediment's
// structured log. While *quiet is set (shutdown), entries go out at debug level.
func zapToSlog(lg *slog.Logger, quiet *atomic.Bool) *zap.Logger {
	return zap.New(&slogCore{lg: lg.With("component", "etcd"), min: zapcore.WarnLevel, quiet: quiet})
}

// benign lists etcd warnings that every embedded start produces and that ask nothing of an
// operator here: Sediment serves etcd's gRPC and HTTP on one client port on purpose, and etcd
// auth (which the simple token is about) is not enabled. They are logged at debug level.
var benign = []string{
	"Running http and grpc server on single port",
	"simple token is not cryptographically signed",
}

// slogCore is a zapcore.Core writing to a slog.Logger. Safe for concurrent use: its fields
// are immutable, quiet is atomic and slog loggers are safe for concurrent use.
type slogCore struct {
	lg    *slog.Logger
	min   zapcore.Level
	quiet *atomic.Bool
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= c.min
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{lg: c.lg.With(attrsOf(fields)...), min: c.min, quiet: c.quiet}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) && c.lg.Enabled(context.Background(), c.level(e)) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) level(e zapcore.Entry) slog.Level {
	if c.quiet.Load() {
		return slog.LevelDebug
	}
	for _, m := range benign {
		if strings.HasPrefix(e.Message, m) {
			return slog.LevelDebug
		}
	}
	return slogLevel(e.Level)
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	args := attrsOf(fields)
	if e.LoggerName != "" {
		args = append(args, slog.String("logger", e.LoggerName))
	}
	c.lg.Log(context.Background(), c.level(e), e.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l >= zapcore.WarnLevel:
		return slog.LevelWarn
	case l >= zapcore.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// attrsOf encodes zap fields through zap's own map encoder (so every field type renders as
// zap would) and returns them as slog attributes sorted by key.
func attrsOf(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, slog.Any(k, enc.Fields[k]))
	}
	return out
}
