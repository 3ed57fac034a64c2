// Package attack holds no code: its tests are issue 10's attack suite. They
// start the whole embedded platform (every function and service, a real POP,
// PostgreSQL, Redis, S3 and mailpit) and replay, from outside, each
// reproduction that once forged a fact, moved money or read what it may not,
// asserting that nothing changed. The per-component regression tests each
// finding also has are listed in docs/security.md.
package attack
