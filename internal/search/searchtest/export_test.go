package searchtest

// ReadersCounting exposes readers (Readers that also counts the reads made
// so far) to this package's external tests.
var ReadersCounting = readers
