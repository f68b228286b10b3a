package jwtauth

import (
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// ForServer returns v as the server's TokenVerifier (server.Deps.Tokens).
func (v *Verifier) ForServer() server.TokenVerifier { return serverVerifier{v} }

// serverVerifier adapts a Verifier to server.TokenVerifier.
type serverVerifier struct{ v *Verifier }

func (s serverVerifier) Verify(token string) (server.Grant, error) {
	g, err := s.v.Verify(token)
	if err != nil {
		return nil, err
	}
	return serverGrant{g}, nil
}

// serverGrant adapts a Grant to server.Grant.
type serverGrant struct{ *Grant }

func (g serverGrant) Subject() string    { return g.Grant.Subject }
func (g serverGrant) Expires() time.Time { return g.Grant.Expires }
