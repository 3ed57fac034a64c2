// Command reference is the cold-start benchmark's yardstick: the smallest Go
// HTTP server that answers /health/readiness on LISTEN_ADDRESS. Overture's
// function binary is measured against it in the same run.
package main

import (
	"cmp"
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	log.Fatal(http.ListenAndServe(cmp.Or(os.Getenv("LISTEN_ADDRESS"), "127.0.0.1:8080"), nil))
}
