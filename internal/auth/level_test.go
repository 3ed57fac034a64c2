package auth_test

import "log/slog"

const slogDebug = slog.LevelDebug
