// Command authparams prints the argon2id parameters auth hashes passwords
// with, for the benchmark report.
package main

import (
	"fmt"

	"github.com/overture-music/overture/internal/auth"
)

func main() { fmt.Println(auth.DefaultArgon2.String()) }
