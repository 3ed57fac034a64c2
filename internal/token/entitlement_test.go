package token_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/overture-music/overture/internal/token"
)

func TestPremiumCurrent(t *testing.T) {
	t.Parallel()
	now := time.Now()
	past := now.Add(-time.Hour)
	claim := func(premium bool, ver int64) *token.Claims {
		return &token.Claims{Premium: premium, EntitlementVersion: ver, PremiumUntil: jwt.NewNumericDate(now.Add(time.Hour))}
	}
	tests := []struct {
		name  string
		c     *token.Claims
		state *token.EntitlementState
		want  bool
	}{
		{"NoStateTrustsClaim", claim(true, 0), nil, true},
		{"NotPremium", claim(false, 2), &token.EntitlementState{Version: 2, Premium: true}, false},
		{"Current", claim(true, 2), &token.EntitlementState{Version: 2, Premium: true}, true},
		{"StaleClaimAfterRevocation", claim(true, 1), &token.EntitlementState{Version: 2, Premium: false}, false},
		{"StaleClaimEvenIfStillPremium", claim(true, 1), &token.EntitlementState{Version: 2, Premium: true}, false},
		{"StateExpired", claim(true, 2), &token.EntitlementState{Version: 2, Premium: true, PremiumUntil: &past}, false},
	}
	for _, tt := range tests {
		if got := tt.c.PremiumCurrent(now, tt.state); got != tt.want {
			t.Errorf("%s: PremiumCurrent = %v, want %v", tt.name, got, tt.want)
		}
	}
}
