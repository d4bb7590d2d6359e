package main

import (
	"reflect"
	"testing"
	"time"
)

func TestParseArgsAcceptsFlagsAnywhere(t *testing.T) {
	a, err := parseArgs([]string{"-mode", "0750", "a", "--exclude=*.tmp", "b", "-exclude", "x/y", "--max-size", "10", "-wait-exec=2s"},
		"mode", "exclude", "max-size", "wait-exec")
	if err != nil {
		t.Fatal(err)
	}
	want := cmdArgs{pos: []string{"a", "b"}, mode: 0o750, hasMode: true, excludes: []string{"*.tmp", "x/y"}, maxSize: 10, waitExec: 2 * time.Second}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("got %+v, want %+v", a, want)
	}
}

func TestParseArgsDoubleDashEndsFlags(t *testing.T) {
	a, err := parseArgs([]string{"a", "--", "-mode", "-"}, "mode")
	if err != nil || !reflect.DeepEqual(a.pos, []string{"a", "-mode", "-"}) || a.hasMode {
		t.Fatalf("got %+v, %v", a, err)
	}
	if a.maxSize != defaultMaxSize {
		t.Fatalf("default max size %d", a.maxSize)
	}
}

func TestParseArgsRefusesBadFlags(t *testing.T) {
	for _, argv := range [][]string{
		{"-mode", "0750"},      // not allowed for this subcommand
		{"-exclude"},           // needs a value
		{"-exclude", "[x"},     // bad pattern
		{"-mode=8"},            // not octal
		{"-mode=10000"},        // above 07777
		{"-max-size=-5"},       // negative
		{"-wait-exec", "-1s"},  // negative
		{"-wait-exec", "soon"}, // not a duration
	} {
		allowed := []string{"exclude", "max-size", "wait-exec"}
		if argv[0] != "-mode" {
			allowed = append(allowed, "mode")
		}
		_, err := parseArgs(argv, allowed...)
		if f, ok := err.(*failure); !ok || f.code != "usage" {
			t.Errorf("%q: got %v, want a usage failure", argv, err)
		}
	}
}

func TestWantOperands(t *testing.T) {
	if err := wantOperands(cmdArgs{pos: []string{"a"}}, 1, "x"); err != nil {
		t.Fatal(err)
	}
	for _, pos := range [][]string{nil, {"a", "b"}, {""}} {
		if err := wantOperands(cmdArgs{pos: pos}, 1, "x"); err == nil {
			t.Errorf("%q accepted", pos)
		}
	}
}
