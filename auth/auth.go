// Package auth makes and checks the relay's join tokens: HS256 JWTs whose
// claims say which room a participant may join, under which name, with at
// most which role, until when (docs/protocol.md, "Rooms, roles and tokens").
// An app's backend mints them with the shared secret (or `relay token`);
// the relay checks them at join.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors from Verify. Each means the join is unauthorized.
var (
	ErrMissing = errors.New("token missing: this relay requires a token in join")
	ErrExpired = errors.New("token expired: get a new one from your app")
	ErrInvalid = errors.New("token invalid: not signed by this relay's secret, or malformed")
)

// Claims are a token's claims.
type Claims struct {
	Room string `json:"room"`
	Name string `json:"name"`
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Mint signs a token for room, name and role, valid for ttl.
func Mint(secret []byte, room, name, role string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("no secret to sign with")
	}
	c := Claims{Room: room, Name: name, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Verify checks token against secret at time now and returns its claims.
// Only HS256 is accepted; exp is required.
func Verify(secret []byte, token string, now time.Time) (Claims, error) {
	if token == "" {
		return Claims{}, ErrMissing
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, ErrExpired
	case err != nil:
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.Room == "" || c.Name == "" || c.Role == "" {
		return Claims{}, fmt.Errorf("%w: claims room, name and role are required", ErrInvalid)
	}
	return c, nil
}
