package eventtype

var cdnSpecs = []Spec{}
