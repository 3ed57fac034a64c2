package eventtype

import "time"

// Account and user events. UserRegistered, PasswordResetRequested and
// LocaleChanged come from the auth service; UserUpdated from the user
// function of the premium saga.
const (
	UserRegistered         = "music.overture.auth.user_registered.v1"
	PasswordResetRequested = "music.overture.auth.password_reset_requested.v1"
	LocaleChanged          = "music.overture.auth.locale_changed.v1"
	UserUpdated            = "music.overture.user.updated.v1"
)

// UserRegisteredData announces a new account. ConfirmURL is empty for
// accounts created through an external provider with a verified email.
type UserRegisteredData struct {
	UserID     string    `json:"user_id"`
	Email      string    `json:"email"`
	Locale     string    `json:"locale"` // "ru" or "en"
	ConfirmURL string    `json:"confirm_url,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Provider   string    `json:"provider,omitempty"` // "", "google", "vk", "yandex"
}

// PasswordResetRequestedData carries the single-use reset link to email.
type PasswordResetRequestedData struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Locale    string    `json:"locale"`
	ResetURL  string    `json:"reset_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LocaleChangedData is an account's language after a change (PATCH
// /v1/auth/me). Version counts the account's locale changes (0 is the locale
// it registered with): it increases by one with every change, so a consumer
// keeps the highest version it has seen and ignores a repeated or older one.
type LocaleChangedData struct {
	UserID  string `json:"user_id"`
	Locale  string `json:"locale"` // "ru" or "en"
	Version int64  `json:"version"`
}

// UserUpdatedData is the user's entitlement state after a change. Version
// increases with every change of the user, so consumers can ignore stale ones.
type UserUpdatedData struct {
	UserID       string     `json:"user_id"`
	IsPremium    bool       `json:"is_premium"`
	PremiumUntil *time.Time `json:"premium_until,omitempty"`
	Version      int64      `json:"version"`
}

var authSpecs = []Spec{
	{
		Type: UserRegistered, Data: UserRegisteredData{},
		Doc:       "An account was created; the notification service emails the confirmation link.",
		Producers: []string{"auth"}, Outbox: true,
		Consumers: []string{"notification"},
	},
	{
		Type: PasswordResetRequested, Data: PasswordResetRequestedData{},
		Doc:       "A listener asked to reset their password; the notification service emails the link.",
		Producers: []string{"auth"}, Outbox: true,
		Consumers: []string{"notification"},
	},
	{
		Type: LocaleChanged, Data: LocaleChangedData{},
		Doc:       "A listener changed their account's language; the notification service writes their later emails in it.",
		Producers: []string{"auth"}, Outbox: true,
		Consumers: []string{"notification"},
	},
	{
		Type: UserUpdated, Data: UserUpdatedData{},
		Doc:       "A user's premium entitlement changed; auth bumps the entitlement version so the next refresh carries it.",
		Producers: []string{"user"}, Outbox: true,
		Consumers: []string{"auth-entitlement"},
	},
}
