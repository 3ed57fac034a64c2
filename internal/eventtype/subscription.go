package eventtype

var subscriptionSpecs = []Spec{}
