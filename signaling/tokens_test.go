package signaling_test

import (
	"testing"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
)

// TestTokens: with a secret, join needs a valid token; the token's room,
// name and role bind the participant.
func TestTokens(t *testing.T) {
	const secret = "test-secret"
	r, ctx := startRelay(t, relayOpts{AuthSecret: secret})
	mint := func(secret, room, name, role string, ttl time.Duration) string {
		tok, err := auth.Mint([]byte(secret), room, name, role, ttl, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name     string
		token    string
		role     string // asked in join
		wantCode string
		wantRole string
	}{
		{"valid host token", mint(secret, "tok", "Ann", "host", time.Hour), "host", "", "host"},
		{"no role asked: the token's", mint(secret, "tok", "Ann", "guest", time.Hour), "", "", "guest"},
		{"less than granted", mint(secret, "tok", "Ann", "host", time.Hour), "audience", "", "audience"},
		{"role escalation", mint(secret, "tok", "Ann", "audience", time.Hour), "host", protocol.CodeForbidden, ""},
		{"another room", mint(secret, "other", "Ann", "host", time.Hour), "host", protocol.CodeForbidden, ""},
		{"expired", mint(secret, "tok", "Ann", "host", -time.Minute), "host", protocol.CodeUnauthorized, ""},
		{"wrong signature", mint("another-secret", "tok", "Ann", "host", time.Hour), "host", protocol.CodeUnauthorized, ""},
		{"missing", "", "host", protocol.CodeUnauthorized, ""},
		{"garbage", "not-a-token", "host", protocol.CodeUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Dial(ctx, client.Config{URL: r.URL, Room: "tok", Name: "Mallory", Role: tt.role,
				Token: tt.token, ID: "j1", Loopback: true})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("join: %v", err)
				}
				defer c.Close()
				j := c.Joined()
				if j.Participant.Name != "Ann" {
					t.Errorf("name %q, want the token's Ann", j.Participant.Name)
				}
				if j.Participant.Role != tt.wantRole {
					t.Errorf("role %q, want %q", j.Participant.Role, tt.wantRole)
				}
				return
			}
			se := serverError(t, err)
			if se.Code != tt.wantCode || se.ID != "j1" {
				t.Errorf("error %+v, want %s for j1", se, tt.wantCode)
			}
		})
	}
	t.Run("unauthorized closes 1008", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.send(`{"type":"join","id":"j","room":"tok","name":"n","token":"x.y.z"}`)
		expectError(t, w.read(), protocol.CodeUnauthorized, "j")
		w.expectClose(protocol.ClosePolicy)
	})
	t.Run("fields are checked before the token", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.send(`{"type":"join","id":"j","room":"bad room","name":"n","token":"x.y.z"}`)
		expectError(t, w.read(), protocol.CodeBadRequest, "j")
	})
}
