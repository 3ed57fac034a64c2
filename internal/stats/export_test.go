package stats

// Lit is lit, for the fuzz test.
var Lit = lit

// CHInsert is chInsert, for the deduplication test.
var CHInsert = chInsert
