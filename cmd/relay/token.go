package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/protocol"
)

// token is `relay token`: it prints a join token signed with the relay's
// secret (-secret, else RELAY_AUTH_SECRET), for tests and small
// deployments; an app's backend mints its own with the same secret.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relay token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", "", "the relay's -auth-secret (default: RELAY_AUTH_SECRET)")
	room := fs.String("room", "", "room the token admits to (required)")
	name := fs.String("name", "", "participant's display name (required)")
	role := fs.String("role", protocol.RoleAudience, "most the participant may be: host, guest or audience")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: relay token -room R -name N [-role host|guest|audience] [-ttl 1h]\n\nPrints a join token (HS256 JWT) signed with RELAY_AUTH_SECRET or -secret.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *secret == "" {
		*secret = getenv("RELAY_AUTH_SECRET")
	}
	switch {
	case *secret == "":
		fmt.Fprintln(stderr, "relay token: no secret: set RELAY_AUTH_SECRET (as the relay has it) or pass -secret")
		return 2
	case !protocol.ValidRoom(*room):
		fmt.Fprintln(stderr, "relay token: -room must be 1 to 64 ASCII letters, digits, '-' or '_'")
		return 2
	case !protocol.ValidName(*name):
		fmt.Fprintln(stderr, "relay token: -name must be 1 to 64 characters without control characters")
		return 2
	case !protocol.ValidRole(*role):
		fmt.Fprintln(stderr, "relay token: -role must be host, guest or audience")
		return 2
	case *ttl <= 0:
		fmt.Fprintln(stderr, "relay token: -ttl must be positive")
		return 2
	}
	tok, err := auth.Mint([]byte(*secret), *room, *name, *role, *ttl, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "relay token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
