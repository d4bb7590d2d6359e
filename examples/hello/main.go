// Command hello is gohot's example app: a stdlib-only HTTP server, so it
// builds offline. Edit the greeting and watch `gohot dev` reload it.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
)

// greeting is what / answers; the reload benchmark edits this line, and
// .ko.yaml ldflags may set it (-X main.greeting=...).
var greeting = "Hello from gohot!"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, greeting)
	})
	// /kodata serves files shipped in kodata/ (KO_DATA_PATH in the image).
	http.HandleFunc("/kodata/", func(w http.ResponseWriter, r *http.Request) {
		dir := os.Getenv("KO_DATA_PATH")
		if dir == "" {
			dir = "kodata"
		}
		http.ServeFile(w, r, filepath.Join(dir, filepath.Clean("/"+r.URL.Path[len("/kodata/"):])))
	})
	log.Printf("hello listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
