package app

import (
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// tokenVerifier adapts a jwtauth.Verifier to the server's TokenVerifier.
type tokenVerifier struct{ v *jwtauth.Verifier }

func (t tokenVerifier) Verify(token string) (server.Grant, error) {
	g, err := t.v.Verify(token)
	if err != nil {
		return nil, err
	}
	return grant{g}, nil
}

// grant adapts a jwtauth.Grant to the server's Grant.
type grant struct{ *jwtauth.Grant }

func (g grant) Subject() string    { return g.Grant.Subject }
func (g grant) Expires() time.Time { return g.Grant.Expires }
