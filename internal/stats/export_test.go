package stats

// Lit is lit, for the fuzz test.
var Lit = lit
