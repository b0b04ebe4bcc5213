// Command notecheck opens a signed note with Go's reference implementation,
// golang.org/x/mod/sumdb/note, so tests can hold argusctl and pyverify to the
// same verdict on the same bytes (tests/it/checkpoint_strict.rs).
//
//	notecheck VERIFIER-KEY NOTE-FILE
//
// VERIFIER-KEY is note.NewVerifier's encoding, <name>+<8 hex key hash>+<base64(0x01 || public key)>.
// It prints one JSON object, {"ok":bool,"error":"...","sigs":[names]}, and
// exits 0 whatever the verdict; exit 2 means it could not run at all.
//
// Build offline against the Debian package golang-golang-x-mod-dev:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o notecheck tools/notecheck/main.go
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
)

type result struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error"`
	Sigs  []string `json:"sigs"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: notecheck VERIFIER-KEY NOTE-FILE")
		os.Exit(2)
	}
	msg, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "notecheck:", err)
		os.Exit(2)
	}
	res := result{Sigs: []string{}}
	v, err := note.NewVerifier(os.Args[1])
	if err != nil {
		// A key hash that disagrees with Go's computation lands here.
		res.Error = "verifier key: " + err.Error()
	} else if n, err := note.Open(msg, note.VerifierList(v)); err != nil {
		res.Error = err.Error()
	} else {
		res.OK = true
		for _, s := range n.Sigs {
			res.Sigs = append(res.Sigs, s.Name)
		}
	}
	out, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notecheck:", err)
		os.Exit(2)
	}
	fmt.Println(string(out))
}
