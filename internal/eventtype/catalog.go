package eventtype

var catalogSpecs = []Spec{}
