// Package price is shared by every service of the shop example: an edit
// here rebuilds and reloads all three; an edit in one cmd/ only that one.
package price

// Label is what each service prints about prices; the multi-service
// benchmark edits this line.
var Label = "prices v1"

// Of returns the price of an item, in cents.
func Of(item string) int {
	return 100 + 7*len(item)
}
