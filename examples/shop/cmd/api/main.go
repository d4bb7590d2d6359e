// Command api is the shop example's front service: it answers / with its
// own line and what the worker says, reached by its name (http://worker:9090
// on the session's Docker network; WORKER_URL overrides it).
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"example.com/shop/internal/price"
)

var greeting = "api v1"

func main() {
	port := env("PORT", "8080")
	worker := env("WORKER_URL", "http://worker:9090/")
	client := &http.Client{Timeout: 2 * time.Second}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (%s)\n", greeting, price.Label)
	})
	// /worker: what the worker answers, reached by its name.
	http.HandleFunc("/worker", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get(worker)
		if err != nil {
			http.Error(w, "worker unreachable: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "worker says: %s\n", strings.TrimSpace(string(body)))
	})
	log.Printf("api listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
