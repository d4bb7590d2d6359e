// Command worker is the shop example's back service: it prices items.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"example.com/shop/internal/price"
)

var greeting = "worker v1"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "9090"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (%s, a book costs %d)\n", greeting, price.Label, price.Of("book"))
	})
	log.Printf("worker listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
