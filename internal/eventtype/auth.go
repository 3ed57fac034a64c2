package eventtype

var authSpecs = []Spec{}
