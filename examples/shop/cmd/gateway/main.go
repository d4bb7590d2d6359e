// Command gateway is the shop example's edge service.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"example.com/shop/internal/price"
)

var greeting = "gateway v1"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8081"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (%s)\n", greeting, price.Label)
	})
	log.Printf("gateway listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
