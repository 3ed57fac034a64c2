package eventtype

import "regexp"

var nameRE = regexp.MustCompile(`^[a-z0-9]+(\.[a-z0-9_]+)+\.v[1-9][0-9]*$`)

func validName(t string) bool { return nameRE.MatchString(t) }
