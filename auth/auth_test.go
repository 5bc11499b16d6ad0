package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	good, err := Mint(secret, "room1", "Ann", "host", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := Mint(secret, "room1", "Ann", "host", time.Minute, now.Add(-time.Hour))
	other, _ := Mint([]byte("other"), "room1", "Ann", "host", time.Hour, now)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Room: "room1", Name: "Ann", Role: "host",
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Room: "room1", Name: "Ann", Role: "host"}).SignedString(secret)
	noRoom, _ := Mint(secret, "", "Ann", "host", time.Hour, now)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", good, nil},
		{"missing", "", ErrMissing},
		{"expired", expired, ErrExpired},
		{"wrong secret", other, ErrInvalid},
		{"alg none", noneTok, ErrInvalid},
		{"no exp", noExp, ErrInvalid},
		{"no room claim", noRoom, ErrInvalid},
		{"garbage", "not.a.jwt", ErrInvalid},
		{"tampered", good[:len(good)-2] + "xx", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Verify(secret, tt.token, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && (c.Room != "room1" || c.Name != "Ann" || c.Role != "host") {
				t.Errorf("claims = %+v", c)
			}
			if err != nil && strings.Contains(err.Error(), string(secret)) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}
