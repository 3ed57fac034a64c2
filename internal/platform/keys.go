package platform

import (
	"maps"
	"slices"
)

// KeyLocalOIDCIssuer is the issuer of make run's local OIDC provider
// (internal/idp), which auth offers as a sign-in provider.
const KeyLocalOIDCIssuer = "LOCAL_OIDC_ISSUER"

// setByPlatform are the keys the platform sets itself before any component
// starts: the dependencies it started (or the user pointed it at), its own
// addresses, and the local OIDC provider's issuer.
var setByPlatform = []string{
	KeyDatabaseURL, KeyRedisURL, KeyS3Endpoint, KeyS3AccessKey, KeyS3SecretKey, KeySMTPURL, KeyMailpitURL,
	KeyPublicBaseURL, KeyBrokerURL, KeyDataDir, KeyAuthKeyEncryption, KeyLocalOIDCIssuer,
}

// ProvidedKeys lists every key `make run` fills in the cfg map its
// functions and services get: what it sets itself and its development
// defaults. A component's required key outside this list would stop it
// under `make run`; TestDeclaredKeysAreProvided holds every component to it.
func ProvidedKeys() []string {
	keys := slices.Concat(setByPlatform, slices.Collect(maps.Keys(defaults)), slices.Collect(maps.Keys(cdnDefaults)))
	slices.Sort(keys)
	return slices.Compact(keys)
}
