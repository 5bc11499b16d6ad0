package loadtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// mintToken returns an HS256 JWT with the claims protocol v1 asks for
// (room, name, role, exp), signed with secret.
func mintToken(secret []byte, room, name, role string, ttl time.Duration) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, err := json.Marshal(map[string]any{
		"room": room,
		"name": name,
		"role": role,
		"exp":  time.Now().Add(ttl).Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil)), nil
}
