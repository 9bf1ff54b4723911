package http

import (
	"bufio"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// flatTargets makes a fresh request of each type decodeFlat serves.
var flatTargets = []func() flatRequest{
	func() flatRequest { return &betRequest{} },
	func() flatRequest { return &winRequest{} },
	func() flatRequest { return &rollbackRequest{} },
	func() flatRequest { return &fundsRequest{} },
}

// sameAsJSON checks body against encoding/json for every request type:
// where decodeFlat accepts it, the long path must decode it without error to
// the same request; where it declines, the request must be untouched. It
// returns how many types accepted it.
func sameAsJSON(t *testing.T, body string) int {
	t.Helper()
	accepted := 0
	for _, target := range flatTargets {
		fast, slow, zero := target(), target(), target()
		var fields [maxFlatFields]flatField
		if !decodeFlat([]byte(body), fast.flatFields(fields[:0])) {
			if !equalRequests(fast, zero) {
				t.Fatalf("%T: declined %q but wrote %+v", fast, body, fast)
			}
			continue
		}
		accepted++
		if err := (&Server{}).decodeJSON(bufio.NewReader(strings.NewReader(body)), slow); err != nil {
			t.Fatalf("%T: decodeFlat accepted %q, encoding/json refuses it: %v", fast, body, err)
		}
		if !equalRequests(fast, slow) {
			t.Fatalf("%T: %q: decodeFlat read %+v, encoding/json %+v", fast, body, fast, slow)
		}
	}
	return accepted
}

func equalRequests(a, b flatRequest) bool {
	var fa, fb [maxFlatFields]flatField
	x, y := a.flatFields(fa[:0]), b.flatFields(fb[:0])
	for i := range x {
		switch {
		case x[i].str != nil && *x[i].str != *y[i].str:
			return false
		case x[i].amount != nil && *x[i].amount != *y[i].amount:
			return false
		}
	}
	return true
}

// TestDecodeFlat: the bodies game servers send are read by decodeFlat, and
// everything unusual is left to encoding/json (which then decides as it
// always did); whatever it reads, encoding/json reads the same way.
func TestDecodeFlat(t *testing.T) {
	for _, tc := range []struct {
		body   string
		accept int // request types that read it on the fast path
	}{
		{`{"tx_id":"b-1","round_id":"r-1","game_id":"g","amount":"1.00"}`, 1},
		{` { "tx_id" : "b-1" ,"amount": 12.5e-1 , "round_id":"r" } ` + "\n", 2},
		{`{"tx_id":"w-1","amount":"2.50","round_id":"r-1","bet_tx_id":"b-1"}`, 1},
		{`{"tx_id":"rb-1","ref_tx_id":"b-1"}`, 1},
		{`{"tx_id":"d-1","amount":-0}`, 3},
		{`{"tx_id":"x"}`, 4},
		{`{}`, 4},
		{"\t{\r\n}\t", 4},
		// Declined: encoding/json decides.
		{`{"tx_id":"a","tx_id":"b"}`, 0},  // repeated key (last wins there)
		{`{"TX_ID":"a"}`, 0},              // keys match case-insensitively there
		{`{"tx_id":"a\u0062"}`, 0},        // escape
		{`{"tx_id":"\u00e4"}`, 0},         // escape
		{"{\"tx_id\":\"\xc3\xa4\"}", 0},   // non-ASCII
		{"{\"tx_id\":\"\xff\"}", 0},       // invalid UTF-8 (replaced there)
		{`{"tx_id":null}`, 0},             // null leaves the field
		{`{"tx_id":"a","extra":1}`, 0},    // unknown field (an error there)
		{`{"tx_id":"a"} {}`, 0},           // trailing value
		{`{"tx_id":"a"}x`, 0},             // trailing garbage
		{`{"tx_id":"a",}`, 0},             // trailing comma
		{`{"tx_id":"a"`, 0},               // unterminated
		{`{"amount":01}`, 0},              // leading zero
		{`{"amount":1.}`, 0},              // no fraction digits
		{`{"amount":1e}`, 0},              // no exponent digits
		{`{"amount":-}`, 0},               // a sign alone
		{`{"amount":+1}`, 0},              // plus sign
		{`{"amount":1 2}`, 0},             // two numbers
		{`{"amount":true}`, 0},            // not a string or number
		{`{"tx_id":1}`, 0},                // a number for a string
		{`null`, 0},                       // not an object
		{`["tx_id"]`, 0},                  // not an object
		{``, 0},                           // empty
		{`{"tx_id":"a` + "\t" + `b"}`, 0}, // control character in a string
		{`{"tx_id":"a","amount":"1","currency":"EUR","round_id":"r","game_id":"g","bet_tx_id":"b"}`, 0}, // no type has all of these
	} {
		if got := sameAsJSON(t, tc.body); got != tc.accept {
			t.Errorf("%q: read on the fast path by %d request types, want %d", tc.body, got, tc.accept)
		}
	}
}

// FuzzDecodeFlat: whatever decodeFlat reads, encoding/json reads to the same
// request; whatever it declines, it leaves untouched.
func FuzzDecodeFlat(f *testing.F) {
	for _, s := range []string{
		`{"tx_id":"b-1","round_id":"r-1","game_id":"g","amount":"1.00"}`,
		`{"tx_id":"w-1","amount":2.5,"round_id":"r-1","bet_tx_id":"b-1","currency":"EUR"}`,
		`{"tx_id":"rb-1","ref_tx_id":"b-1"}`,
		`{"tx_id":"a","tx_id":"b"}`, `{"Tx_Id":"a"}`, `{"tx_id":"a\"b"}`, `{"amount":-0.0e+1}`, ` {} `,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		sameAsJSON(t, body)
	})
}

// TestFlatFieldsAreTheJSONNames: each request's flatFields lists exactly its
// struct's JSON names, in order, each pointing at its own field, so the two
// spellings of a request cannot drift apart (a name only one of them knew
// would be declined, or decoded into the wrong field).
func TestFlatFieldsAreTheJSONNames(t *testing.T) {
	for _, target := range flatTargets {
		req := target()
		v := reflect.ValueOf(req).Elem()
		var tags []string
		for i := range v.NumField() {
			tags = append(tags, v.Type().Field(i).Tag.Get("json"))
		}
		fs := req.flatFields(nil)
		var names []string
		for i, f := range fs {
			names = append(names, f.name)
			field := v.Field(i).Addr().Interface()
			if (f.str == nil) == (f.amount == nil) || (f.str != nil && field != any(f.str)) || (f.amount != nil && field != any(f.amount)) {
				t.Errorf("%T: %s does not point at field %d", req, f.name, i)
			}
		}
		if !slices.Equal(names, tags) {
			t.Errorf("%T: flatFields %v, JSON names %v", req, names, tags)
		}
	}
}
