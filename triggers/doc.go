// Package triggers holds no code: the directory is the Knative Trigger and
// PingSource manifests that route events from the broker to functions (see
// README.md). The package exists for its test, the static flow check, which
// proves from the files alone — before anything runs — that every event has
// somewhere to go and every trigger listens for something that happens.
package triggers
