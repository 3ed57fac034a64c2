// Package benchmark holds what the benchmark drivers share. Each driver is a
// Go test that hack/bench/<area>.sh runs; it measures its subject beside a
// reference in the same run and writes a markdown section with the ratio.
// For the ratios to mean the same in every section, the drivers start the
// same kind of PostgreSQL server (durable, unlike the test servers), drive
// load the same way, cut percentiles the same way and describe the machine
// in the same words; those pieces live here.
package benchmark
