package signaling

import (
	"errors"
	"fmt"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
)

// errUnauthorized marks a join refused for its token.
var errUnauthorized = errors.New("unauthorized")

// roleRank orders roles by what they may do.
var roleRank = map[string]int{protocol.RoleAudience: 0, protocol.RoleGuest: 1, protocol.RoleHost: 2}

// admit decides the name and role a join gets. Without a secret it trusts
// the join. With one, the token decides: its room must be the join's, its
// name is the participant's, and its role is the most the join may ask for
// (a join without a role gets the token's). Errors wrapping
// errUnauthorized close the connection; others are forbidden.
func (s *Server) admit(j *protocol.Join) (string, sfu.Role, error) {
	if len(s.cfg.AuthSecret) == 0 {
		role := j.Role
		if role == "" {
			role = protocol.RoleAudience
		}
		return j.Name, sfu.Role(role), nil
	}
	c, err := auth.Verify(s.cfg.AuthSecret, j.Token, time.Now())
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", errUnauthorized, err)
	}
	if !protocol.ValidRole(c.Role) || !protocol.ValidName(c.Name) {
		return "", "", fmt.Errorf("%w: the token's role or name is not valid", errUnauthorized)
	}
	if c.Room != j.Room {
		return "", "", fmt.Errorf("the token is for room %q, not %q", c.Room, j.Room)
	}
	role := j.Role
	if role == "" {
		role = c.Role
	}
	if roleRank[role] > roleRank[c.Role] {
		return "", "", fmt.Errorf("the token allows at most %s, not %s", c.Role, role)
	}
	return c.Name, sfu.Role(role), nil
}
