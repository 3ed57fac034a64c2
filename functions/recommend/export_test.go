package recommendfn

// SetAfterBegin makes f call h once it has begun a refresh job (the kill
// test's child waits there for its SIGKILL).
func SetAfterBegin(f *Function, h func()) { f.afterBegin = h }
