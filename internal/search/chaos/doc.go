// Package chaos holds the end-to-end crash test of the catalog's CQRS pipeline
// (write model → CDC → indexer → search read model): a large mixed workload
// runs while CDC and the indexer are SIGKILLed at random, and afterwards the
// read model must equal the write model. It has no code of its own; the test
// lives in its own package because it runs both services as child processes.
package chaos
