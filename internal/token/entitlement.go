package token

import "time"

// The auth service publishes each user's current entitlement in Redis, so a
// service that must not honour a stale premium claim (the CDN edge serving
// premium renditions) can compare a token's ent_ver with it instead of
// waiting up to an access-token lifetime for the claim to catch up.

// EntitlementKey is the Redis key holding the JSON EntitlementState of userID.
func EntitlementKey(userID string) string { return "auth:entitlement:" + userID }

// EntitlementState is the value at EntitlementKey:
// {"version":N,"premium":bool,"premium_until":RFC3339|null}.
type EntitlementState struct {
	Version      int64      `json:"version"`
	Premium      bool       `json:"premium"`
	PremiumUntil *time.Time `json:"premium_until"`
}

// PremiumCurrent reports whether the token grants premium at now and its
// claim is not older than the current state. A nil state (no entry: the user
// never had an entitlement change) leaves the claim as the only evidence.
func (c *Claims) PremiumCurrent(now time.Time, current *EntitlementState) bool {
	if !c.IsPremium(now) {
		return false
	}
	if current == nil {
		return true
	}
	if c.EntitlementVersion < current.Version {
		return false // issued before the latest change; the client must refresh
	}
	return current.Premium && (current.PremiumUntil == nil || now.Before(*current.PremiumUntil))
}
