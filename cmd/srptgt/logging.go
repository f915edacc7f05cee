package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
)

// newLogger builds the daemon's logger from the logging section: level
// debug, info, warn or error; format console (human-readable lines) or
// json (one object per line, keys ts, level, logger, msg and the fields).
func newLogger(l config.Logging, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(l.Level)
	if err != nil {
		return nil, fmt.Errorf("logging.level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch l.Format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console", "":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("logging.format: %q is not console or json", l.Format)
	}
	out := zapcore.Lock(zapcore.AddSync(w))
	return zap.New(zapcore.NewCore(enc, out, level), zap.ErrorOutput(out)), nil
}
