package reader

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		desc    string
		headers []string
		token   string
		err     error
	}{
		{"none", nil, "", ErrNoToken},
		{"bearer", []string{"Bearer abc.DEF-_~+/=="}, "abc.DEF-_~+/==", nil},
		{"case-insensitive scheme", []string{"bEARER abc"}, "abc", nil},
		{"extra spaces before the token", []string{"Bearer   abc"}, "abc", nil},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", ErrMalformedAuth},
		{"basic", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, "", ErrMalformedAuth},
		{"scheme only", []string{"Bearer"}, "", ErrMalformedAuth},
		{"empty token", []string{"Bearer "}, "", ErrMalformedAuth},
		{"space inside", []string{"Bearer a b"}, "", ErrMalformedAuth},
		{"only padding", []string{"Bearer =="}, "", ErrMalformedAuth},
		{"padding inside", []string{"Bearer a=b"}, "", ErrMalformedAuth},
		{"control character", []string{"Bearer a\tb"}, "", ErrMalformedAuth},
		{"non-ASCII", []string{"Bearer jöken"}, "", ErrMalformedAuth},
	}
	for _, tc := range tests {
		h := http.Header{}
		for _, v := range tc.headers {
			h.Add("Authorization", v)
		}
		tok, err := bearerToken(h)
		if tok != tc.token || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: token %q err %v, want %q %v", tc.desc, tok, err, tc.token, tc.err)
		}
		if err != nil && len(tc.headers) == 1 && len(tc.headers[0]) > 8 {
			if secret := tc.headers[0][7:]; len(secret) > 3 && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error %q quotes the credential", tc.desc, err)
			}
		}
	}
}

// TestDecisionCache checks expiry and the size bound (least recently used first out).
func TestDecisionCache(t *testing.T) {
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte(fmt.Sprint("token", i))) }
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := newDecisionCache(3)
	for i := range 3 {
		c.put(key(i), decision{user: fmt.Sprint("u", i)}, now.Add(time.Minute))
	}
	if _, ok := c.get(key(0), now); !ok { // 0 becomes the most recently used
		t.Fatal("entry 0 missing")
	}
	c.put(key(3), decision{user: "u3"}, now.Add(time.Minute))
	if c.len() != 3 {
		t.Fatalf("%d entries, want the bound 3", c.len())
	}
	if _, ok := c.get(key(1), now); ok {
		t.Error("entry 1, the least recently used, survived")
	}
	for _, i := range []int{0, 2, 3} {
		if d, ok := c.get(key(i), now); !ok || d.user != fmt.Sprint("u", i) {
			t.Errorf("entry %d: %+v %v", i, d, ok)
		}
	}
	if _, ok := c.get(key(2), now.Add(time.Minute)); ok {
		t.Error("entry 2 served at its expiry")
	}
	if c.len() != 2 {
		t.Errorf("%d entries after an expired lookup, want 2", c.len())
	}
	c.put(key(0), decision{user: "again"}, now.Add(2*time.Minute))
	if d, ok := c.get(key(0), now.Add(90*time.Second)); !ok || d.user != "again" {
		t.Errorf("refreshed entry: %+v %v", d, ok)
	}
}
